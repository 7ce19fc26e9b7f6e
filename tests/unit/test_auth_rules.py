import time
from types import SimpleNamespace

import pytest

from webapp.auth.guards import safe_next
from webapp.auth.service import roles_for
from webapp.auth.session import SESSION_USER_KEY, session_user
from webapp.config import OIDCSettings, Settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/orders/12?tab=x", "/orders/12?tab=x"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("orders", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
    ],
)
def test_next_is_a_same_site_path_or_home(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


@pytest.mark.parametrize(
    ("email", "claims", "expected"),
    [
        ("a@example.com", {}, {"user"}),
        ("help@example.com", {}, {"user", "support"}),
        ("boss@example.com", {}, {"user", "support", "admin"}),
        ("a@example.com", {"roles": ["support"]}, {"user", "support"}),
        ("a@example.com", {"roles": "admin"}, {"user", "support", "admin"}),
        ("a@example.com", {"groups": ["support"]}, {"user"}),  # not the configured claim
    ],
)
def test_roles_come_from_settings_and_the_configured_claim(email: str, claims: dict, expected: set[str]) -> None:
    settings = Settings(
        support_emails=["help@example.com"], admin_emails=["boss@example.com"], oidc=OIDCSettings(roles_claim="roles")
    )
    assert roles_for(email, claims, settings) == expected


def test_emails_from_the_environment_are_split_and_lower_cased(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORT_EMAILS", "Help@Example.com, desk@example.com")
    assert Settings(_env_file=None).support_emails == ["help@example.com", "desk@example.com"]


@pytest.mark.parametrize(("age", "signed_in"), [(10, True), (3600 * 13, False)])
def test_session_older_than_the_absolute_timeout_does_not_count(age: int, signed_in: bool) -> None:
    data = {"id": 1, "email": "a@example.com", "roles": ["user"], "signed_in_at": time.time() - age}
    connection = SimpleNamespace(scope={"session": {SESSION_USER_KEY: data}})
    user = session_user(connection, absolute_timeout_seconds=12 * 3600)  # type: ignore[arg-type]
    assert (user is not None) is signed_in


def test_no_session_means_nobody() -> None:
    assert session_user(SimpleNamespace(scope={}), absolute_timeout_seconds=60) is None  # type: ignore[arg-type]
