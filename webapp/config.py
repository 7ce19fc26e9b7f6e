"""Typed settings from the environment (and `.env`); defaults describe the embedded development stack.

Each group reads its own prefixed variables (`DATABASE_URL`, `ALIXPAY_BASE_URL`, ...). With
`ENVIRONMENT=production` the settings refuse every development default that would be unsafe there.
"""

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Literal, TypeAlias
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar.di import NamedDependency
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from webapp.alixpay.keys import KeyLoadError, is_shared_test_key, load_private_key, load_public_key
from webapp.secretbox import secrets_keys

DEV_DIR = Path("var/dev")

# Development-only values: fine on a laptop, refused in production by Settings._refuse_unsafe_defaults.
DEV_SESSION_SECRET = "dev-only-session-secret-not-for-production"  # noqa: S105
DEV_ALIXPAY_SECRET_KEY = "sk_dev_sandbox_only"  # noqa: S105
DEV_ALIXPAY_WEBHOOK_SECRET_KEY = "whsk_dev_sandbox_only"  # noqa: S105
DEV_OIDC_CLIENT_SECRET = "dev-only-oidc-client-secret"  # noqa: S105
DEV_SECRETS_KEY = "ZGV2LW9ubHktc2VjcmV0cy1rZXktbm90LWZvci1wcm8="
# The accounts seeded at the local IdP by `python -m webapp dev` (email → role), named on the home page.
DEV_ACCOUNTS = {"user@example.com": "user", "support@example.com": "support", "admin@example.com": "admin"}


SMTP_SCHEMES = {"smtp": (False, None), "smtp+starttls": (False, True), "smtps": (True, False)}
"""URL scheme → (TLS from the start, STARTTLS): plain SMTP upgrades when the server offers it."""


@dataclass(frozen=True)
class SmtpServer:
    """Where mail goes: `SMTP_URL` read into what the SMTP client needs (no other module parses it)."""

    host: str
    port: int
    use_tls: bool
    start_tls: bool | None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> "SmtpServer":
        """`smtp://host:25`, `smtp+starttls://user:password@host:587` or `smtps://user:password@host:465`."""
        parts = urlsplit(url)
        if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
            raise ValueError("SMTP_URL must be smtp://, smtp+starttls:// or smtps:// and name a host")
        use_tls, start_tls = SMTP_SCHEMES[parts.scheme]
        default_port = 465 if use_tls else 587 if start_tls else 25
        return cls(
            parts.hostname,
            parts.port or default_port,
            use_tls,
            start_tls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    @property
    def encrypted(self) -> bool:
        return self.use_tls or bool(self.start_tls)

    @property
    def on_loopback(self) -> bool:
        try:
            return ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")


class DatabaseSettings(_Group):
    model_config = SettingsConfigDict(env_prefix="DATABASE_")

    url: str = f"sqlite+aiosqlite:///{DEV_DIR / 'app.db'}"
    """The embedded stack's database (`python -m webapp dev --state-dir` moves it)."""
    echo: bool = False
    pool_size: int = 20
    """Connections each instance keeps open to PostgreSQL; more concurrent units of work wait for one."""


class SessionSettings(_Group):
    model_config = SettingsConfigDict(env_prefix="SESSION_")

    secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    previous_secret: SecretStr | None = None
    """During a rotation, the secret before `secret`: what it signed still counts (docs/operations.md)."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """What may have signed a token or sealed a cookie: the current secret first, then the previous one."""
        kept = (self.secret, self.previous_secret) if self.previous_secret else (self.secret,)
        return tuple(secret.get_secret_value() for secret in kept)

    idle_timeout_seconds: int = 30 * 60
    absolute_timeout_seconds: int = 12 * 60 * 60


class AlixPaySettings(_Group):
    model_config = SettingsConfigDict(env_prefix="ALIXPAY_")

    base_url: str = "http://127.0.0.1:8001"
    partner_code: str = "devpartner"
    secret_key: SecretStr = SecretStr(DEV_ALIXPAY_SECRET_KEY)
    webhook_secret_key: SecretStr = SecretStr(DEV_ALIXPAY_WEBHOOK_SECRET_KEY)
    private_key_file: Path = DEV_DIR / "partner_private.pem"
    public_key_files: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [DEV_DIR / "alix_public.pem"])
    timeout_seconds: float = 15.0
    ipn_secret: Literal["secret_key", "webhook_secret_key"] = "secret_key"  # noqa: S105 (a choice, not a secret)
    """The secret IPN signatures end with (CONTRACT.md §5, unsettled): our `secretKey` or the `webhookSecretKey`."""
    bank_code_style: Literal["code", "bin"] = "code"
    """`recipientBankCode` as Alix Pay's code (`TECHCOMBANK`) or as the bank's BIN (`970407`)."""

    @field_validator("public_key_files", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """`ALIXPAY_PUBLIC_KEY_FILES` is comma-separated so two keys can be trusted during a rotation."""
        if isinstance(value, str):
            return [Path(part.strip()) for part in value.split(",") if part.strip()]
        return value


class OIDCSettings(_Group):
    model_config = SettingsConfigDict(env_prefix="OIDC_")

    discovery_url: str = "http://127.0.0.1:9400/.well-known/openid-configuration"
    client_id: str = "cashout-dev"
    client_secret: SecretStr = SecretStr(DEV_OIDC_CLIENT_SECRET)
    scopes: str = "openid email profile"
    roles_claim: str = "groups"
    """An id_token claim (a list of names) that can grant roles, beside SUPPORT_EMAILS and ADMIN_EMAILS."""
    support_role: str = "support"
    admin_role: str = "admin"
    timeout_seconds: float = 10.0
    leeway_seconds: int = 60


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return [part.strip().lower() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    public_base_url: str = "http://127.0.0.1:8000"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    session: SessionSettings = Field(default_factory=SessionSettings)
    alixpay: AlixPaySettings = Field(default_factory=AlixPaySettings)
    oidc: OIDCSettings = Field(default_factory=OIDCSettings)
    cashout_min_vnd: int = 50_000
    cashout_max_vnd: int = 500_000_000
    reconcile_interval_seconds: float = 15.0
    reconcile_silence_seconds: float = 120.0
    """An order that is not final and has heard nothing for this long is asked about with the details call."""
    ipn_max_body_bytes: int = 64 * 1024
    ipn_replay_grace_seconds: float = 30.0
    """A stored receipt still unprocessed after this long was interrupted, and is processed again."""
    ipn_replay_interval_seconds: float = 5.0
    ipn_retry_base_seconds: float = 30.0
    """A receipt whose judging raised is tried again after this, then twice as long each time …"""
    ipn_max_attempts: int = 8
    """… and parked for a person to look at after this many failed attempts."""
    ipn_junk_retention_days: float = 30.0
    """Malformed, badly signed and oversized receipts are deleted after this long; all others are kept."""
    cleanup_interval_seconds: float = 15 * 60.0
    """How often expired sessions and old junk receipts are deleted."""
    channels_redis_url: str | None = None
    """Live updates through Redis instead of PostgreSQL LISTEN/NOTIFY (needs the `redis` extra)."""
    metrics_token: SecretStr | None = None
    """A bearer token `/metrics` asks for; in production, without one, `/metrics` is off."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """How much the app logs; at DEBUG too, no secret, token or SQL parameter is ever written."""
    log_json: bool | None = None
    """JSON log lines; by default in production only."""
    log_access: bool = True
    """A line per request (uvicorn's access log); off behind a proxy that logs requests itself (~5 % of an IPN's
    CPU, docs/PERFORMANCE.md)."""
    trust_request_id_header: bool = False
    """Take `X-Request-ID` from requests: only when a proxy in front of every instance sets it."""
    alarm_interval_seconds: float = 60.0
    activity_rollup_interval_seconds: float = 60.0
    """How often the activity charts' appended counts are folded into one row per hour and kind."""
    audit_anchor_interval_seconds: float = 24 * 60 * 60.0
    """How often the audit chain's head is written out (a log line and the alarm webhook)."""
    alarm_ipn_silence_minutes: float = 30.0
    """IPNs silent this long while orders wait opens the `ipn_silence` alarm."""
    alarm_job_failures: int = 3
    """A background job failing this many rounds in a row opens its alarm."""
    alarm_webhook_url: str | None = None
    """Where each alarm's firing and resolution is POSTed as JSON (optional)."""
    webhook_interval_seconds: float = 5.0
    """How often due partner webhook events are sent."""
    webhook_timeout_seconds: float = 10.0
    run_jobs: bool = True
    """Run the background jobs in this instance (`serve --no-jobs` turns them off: run them on chosen instances)."""
    support_stuck_after_minutes: float = 60.0
    """Support's "stuck" filter: orders not final and without any change for longer than this."""
    support_timezone: str = "Asia/Ho_Chi_Minh"
    """The console's time zone (an IANA name): its dates, its "today" and its CSV times."""
    rate_limit_sign_in: int = 30
    """Sign-ins (and partner launches) per minute from one address."""
    rate_limit_orders: int = 20
    """Reviews and confirmations per minute by one person."""
    rate_limit_search: int = 120
    """Support searches and exports per minute by one agent."""
    rate_limit_partner_api: int = 600
    """Partner API requests per minute with one API key."""
    rate_limit_ipn: int = 600
    """IPNs per minute from one address that is not in IPN_ALLOWED_SOURCES."""
    ipn_allowed_sources: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Alix Pay's addresses (comma-separated): their IPNs are never rate-limited."""
    support_contact_email: str | None = None
    """Where a person whose cash-out failed can write (their order page and email name it)."""
    smtp_url: SecretStr | None = None
    """Where the person's emails go (`smtp://`, `smtp+starttls://user:password@host:587`, `smtps://…`); unset, none
    are sent (they wait in the outbox for three days)."""
    mail_from: str = "Cash-out <cashout@localhost>"
    mail_interval_seconds: float = 5.0
    """How often due emails are sent."""
    support_emails: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admin_emails: Annotated[list[str], NoDecode] = Field(default_factory=list)
    secrets_key: SecretStr = SecretStr(DEV_SECRETS_KEY)
    """Fernet keys (comma-separated, newest first) that seal partner secrets in the database (`secretbox.py`)."""
    partner_rotation_grace_hours: float = 24.0
    """After a partner's webhook secret or launch key changes, the previous one still counts this long: webhooks
    carry both signatures, return links both, launch tokens made with either are accepted (docs/embedding.md)."""

    @field_validator("secrets_key")
    @classmethod
    def _secrets_keys_readable(cls, value: SecretStr) -> SecretStr:
        secrets_keys(value.get_secret_value())
        return value

    _split_emails = field_validator("support_emails", "admin_emails", "ipn_allowed_sources", mode="before")(
        _comma_separated
    )

    @field_validator("support_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r} (an IANA name, such as Asia/Ho_Chi_Minh)") from error
        return value

    @property
    def console_timezone(self) -> ZoneInfo:
        return ZoneInfo(self.support_timezone)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_readable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            SmtpServer.from_url(value.get_secret_value())
        return value

    @property
    def smtp_server(self) -> SmtpServer | None:
        return SmtpServer.from_url(self.smtp_url.get_secret_value()) if self.smtp_url else None

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def logs_as_json(self) -> bool:
        return self.is_production if self.log_json is None else self.log_json

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> "Settings":
        if self.is_production:
            problems = unsafe_production_settings(self)
            if problems:
                raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self


def unsafe_production_settings(settings: Settings) -> list[str]:
    """Name every setting that is still a development default, a shared test key, or plain http."""
    problems = [
        f"{name} is the development default"
        for name, value, default in (
            ("SESSION_SECRET", settings.session.secret, DEV_SESSION_SECRET),
            ("ALIXPAY_SECRET_KEY", settings.alixpay.secret_key, DEV_ALIXPAY_SECRET_KEY),
            ("ALIXPAY_WEBHOOK_SECRET_KEY", settings.alixpay.webhook_secret_key, DEV_ALIXPAY_WEBHOOK_SECRET_KEY),
            ("OIDC_CLIENT_SECRET", settings.oidc.client_secret, DEV_OIDC_CLIENT_SECRET),
        )
        if value.get_secret_value() == default
    ]
    if DEV_SECRETS_KEY in secrets_keys(settings.secrets_key.get_secret_value()):
        problems.append("SECRETS_KEY holds the development default")
    if len(settings.session.secret.get_secret_value()) < 32:
        problems.append("SESSION_SECRET must be at least 32 characters")
    for name, url in (
        ("PUBLIC_BASE_URL", settings.public_base_url),
        ("ALIXPAY_BASE_URL", settings.alixpay.base_url),
        ("OIDC_DISCOVERY_URL", settings.oidc.discovery_url),
        ("ALARM_WEBHOOK_URL", settings.alarm_webhook_url),
    ):
        if url is not None and urlsplit(url).scheme != "https":
            problems.append(f"{name} must be an https URL")
    if settings.metrics_token is not None and len(settings.metrics_token.get_secret_value()) < 32:
        problems.append("METRICS_TOKEN must be at least 32 characters")
    smtp = settings.smtp_server
    if smtp is not None and not smtp.encrypted and not smtp.on_loopback:
        problems.append("SMTP_URL must be smtps:// or smtp+starttls:// unless the server is on loopback")
    problems.extend(_key_problems(settings.alixpay))
    return problems


def _key_problems(alixpay: AlixPaySettings) -> list[str]:
    defaults = AlixPaySettings.model_fields
    problems = []
    if alixpay.private_key_file == defaults["private_key_file"].default:
        problems.append("ALIXPAY_PRIVATE_KEY_FILE is the development default")
    if alixpay.public_key_files == defaults["public_key_files"].default_factory():
        problems.append("ALIXPAY_PUBLIC_KEY_FILES is the development default")
    keys = [("ALIXPAY_PRIVATE_KEY_FILE", alixpay.private_key_file, load_private_key)]
    keys += [("ALIXPAY_PUBLIC_KEY_FILES", path, load_public_key) for path in alixpay.public_key_files]
    for name, path, load in keys:
        try:
            if is_shared_test_key(load(path)):
                problems.append(f"{name} ({path}) is a shared test key")
        except KeyLoadError as exc:
            problems.append(f"{name}: {exc}")
    return problems


AppSettings: TypeAlias = NamedDependency[Settings]
"""A handler parameter named `settings` gets the app's settings."""
