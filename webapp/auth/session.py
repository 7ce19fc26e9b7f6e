"""The signed-in person as the session knows them, with idle (store expiry) and absolute timeouts."""

import time
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection

SESSION_USER_KEY = "user"


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

    @property
    def is_support(self) -> bool:
        return "support" in self.roles or "admin" in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def to_session(self, id_token: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "roles": sorted(self.roles),
            "signed_in_at": self.signed_in_at,
            "id_token": id_token,
            "partner": self.partner,
            "partner_id": self.partner_id,
            "partner_user_id": self.partner_user_id,
        }


def session_user(connection: ASGIConnection, absolute_timeout_seconds: int) -> CurrentUser | None:
    """The signed-in person, or None; a session older than the absolute timeout no longer counts."""
    session = connection.scope.get("session")
    data = session.get(SESSION_USER_KEY) if isinstance(session, dict) else None
    if not isinstance(data, dict):
        return None
    if time.time() - float(data.get("signed_in_at", 0)) > absolute_timeout_seconds:
        return None
    return CurrentUser(
        id=int(data["id"]),
        email=str(data["email"]),
        roles=frozenset(data.get("roles", [])),
        signed_in_at=float(data["signed_in_at"]),
        partner=data.get("partner"),
        partner_id=data.get("partner_id"),
        partner_user_id=data.get("partner_user_id"),
    )


def session_id_token(connection: ASGIConnection) -> str | None:
    session = connection.scope.get("session")
    data = session.get(SESSION_USER_KEY) if isinstance(session, dict) else None
    return data.get("id_token") if isinstance(data, dict) else None
