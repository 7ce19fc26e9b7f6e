import secrets
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.conftest import VECTORS_DIR, RsaKeys
from webapp.config import DEV_SECRETS_KEY, Environment, Settings


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch, rsa_keys: RsaKeys) -> dict[str, str]:
    """A complete, safe production configuration through the documented environment names."""
    env = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": "postgresql+asyncpg://app@db.internal/app",
        "SESSION_SECRET": secrets.token_urlsafe(32),
        "PUBLIC_BASE_URL": "https://cashout.example.com",
        "ALIXPAY_BASE_URL": "https://api.alixpay.com",
        "ALIXPAY_PARTNER_CODE": "kaiAlinex",
        "ALIXPAY_SECRET_KEY": secrets.token_urlsafe(24),
        "ALIXPAY_WEBHOOK_SECRET_KEY": secrets.token_urlsafe(24),
        "ALIXPAY_PRIVATE_KEY_FILE": str(rsa_keys.partner.private),
        "ALIXPAY_PUBLIC_KEY_FILES": f"{rsa_keys.alix.public}, {rsa_keys.other.public}",
        "OIDC_DISCOVERY_URL": "https://idp.example.com/.well-known/openid-configuration",
        "OIDC_CLIENT_ID": "cashout",
        "OIDC_CLIENT_SECRET": secrets.token_urlsafe(24),
        "SECRETS_KEY": f"{Fernet.generate_key().decode()}, {Fernet.generate_key().decode()}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_safe_production_configuration_is_accepted(production_env: dict[str, str], rsa_keys: RsaKeys) -> None:
    settings = Settings(_env_file=None)
    assert settings.environment is Environment.PRODUCTION
    assert settings.database.url == production_env["DATABASE_URL"]
    assert settings.alixpay.partner_code == "kaiAlinex"
    assert settings.alixpay.public_key_files == [rsa_keys.alix.public, rsa_keys.other.public]
    assert settings.oidc.client_id == "cashout"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESSION_SECRET", None),
        ("SESSION_SECRET", "short-but-not-default"),
        ("ALIXPAY_SECRET_KEY", None),
        ("ALIXPAY_WEBHOOK_SECRET_KEY", None),
        ("OIDC_CLIENT_SECRET", None),
        ("PUBLIC_BASE_URL", "http://cashout.example.com"),
        ("ALIXPAY_BASE_URL", "http://api.alixpay.com"),
        ("OIDC_DISCOVERY_URL", "http://idp.example.com/.well-known/openid-configuration"),
        ("ALIXPAY_PRIVATE_KEY_FILE", None),
        ("ALIXPAY_PRIVATE_KEY_FILE", str(VECTORS_DIR / "partner_private.pem")),
        ("ALIXPAY_PRIVATE_KEY_FILE", str(VECTORS_DIR / "partner_private_pkcs1.pem")),
        ("ALIXPAY_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
        ("ALIXPAY_PUBLIC_KEY_FILES", None),
        ("ALIXPAY_PUBLIC_KEY_FILES", str(VECTORS_DIR / "alix_public.pem")),
        ("ALARM_WEBHOOK_URL", "http://alerts.example.com/hook"),
        ("METRICS_TOKEN", "guessable"),
        ("SECRETS_KEY", None),
        ("SECRETS_KEY", f"{Fernet.generate_key().decode()},{DEV_SECRETS_KEY}"),  # the old key of a rotation too
        ("SECRETS_KEY", "not-a-fernet-key"),
    ],
)
def test_production_refuses_unsafe_setting_and_names_it(
    production_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, name: str, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(name)  # back to the development default
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings(_env_file=None)


def test_development_accepts_its_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    settings = Settings()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.database.url.startswith("sqlite+aiosqlite:///")


def test_real_environment_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    Path(".env").write_text("ALIXPAY_PARTNER_CODE=from-dotenv\nOIDC_CLIENT_ID=dotenv-client\n")
    monkeypatch.setenv("ALIXPAY_PARTNER_CODE", "from-env")
    settings = Settings()
    assert settings.alixpay.partner_code == "from-env"
    assert settings.oidc.client_id == "dotenv-client"


def test_secrets_are_never_printed(production_env: dict[str, str]) -> None:
    settings = Settings(_env_file=None)
    rendered = " ".join([repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())])
    for name in ("SESSION_SECRET", "ALIXPAY_SECRET_KEY", "ALIXPAY_WEBHOOK_SECRET_KEY", "OIDC_CLIENT_SECRET"):
        assert production_env[name] not in rendered
    assert all(key.strip() not in rendered for key in production_env["SECRETS_KEY"].split(","))
    assert "**********" in rendered


def test_production_error_does_not_echo_secret_values(
    production_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://plain.example.com")
    with pytest.raises(ValueError) as caught:
        Settings(_env_file=None)
    for name in ("SESSION_SECRET", "ALIXPAY_SECRET_KEY", "OIDC_CLIENT_SECRET"):
        assert production_env[name] not in str(caught.value)


def test_the_console_time_zone_is_vietnam_unless_set_and_a_wrong_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings().console_timezone.key == "Asia/Ho_Chi_Minh"
    monkeypatch.setenv("SUPPORT_TIMEZONE", "Asia/Manila")
    assert Settings().console_timezone.key == "Asia/Manila"
    monkeypatch.setenv("SUPPORT_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Settings()
