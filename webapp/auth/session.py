"""The signed-in person as the session knows them, with idle (store expiry) and absolute timeouts."""

import time
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection

from webapp.sessions import from_session, to_session

SESSION_USER_KEY = "user"
ID_TOKEN_KEY = "id_token"  # noqa: S105 (where the ID token is kept, not a secret)


@dataclass(frozen=True)
class CurrentUser:
    id: int
    email: str
    roles: frozenset[str]
    signed_in_at: float
    partner: str | None = None
    """Set for a session a partner's launch token opened: it lives in that partner's hosted pages only."""
    partner_id: int | None = None
    partner_user_id: str | None = None
    partner_reference: str | None = None
    """The launch's `reference`: every order placed in this embedded session carries it."""

    @property
    def is_support(self) -> bool:
        return "support" in self.roles or "admin" in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def session_user(connection: ASGIConnection, absolute_timeout_seconds: int) -> CurrentUser | None:
    """The signed-in person, or None; a session older than the absolute timeout no longer counts."""
    session = connection.scope.get("session")
    user = from_session(CurrentUser, session.get(SESSION_USER_KEY)) if isinstance(session, dict) else None
    if user is None or time.time() - user.signed_in_at > absolute_timeout_seconds:
        return None
    return user


def session_owner(session: dict[str, Any]) -> int | None:
    """The id of the person a stored session is signed in as (`sessions.HttpSession.owner`)."""
    user = session.get(SESSION_USER_KEY)
    return user.get("id") if isinstance(user, dict) and isinstance(user.get("id"), int) else None


def signed_in_session(user: CurrentUser, id_token: str | None) -> dict[str, Any]:
    """What a session holds once a person signed in (the ID token is the logout's `id_token_hint`)."""
    return {SESSION_USER_KEY: to_session(user), ID_TOKEN_KEY: id_token}


def session_id_token(connection: ASGIConnection) -> str | None:
    session = connection.scope.get("session")
    return session.get(ID_TOKEN_KEY) if isinstance(session, dict) else None
