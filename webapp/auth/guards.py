"""Route guards: anonymous people are sent to sign in (and back); a missing role is a 403 page."""

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, State
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.csrf import generate_csrf_token
from litestar.utils.scope.state import ScopeState

from webapp.auth.session import CurrentUser
from webapp.csrf import csrf_config
from webapp.flows import flow_partner
from webapp.sessions import EMBED_SESSION_COOKIE, SESSION_COOKIE, session_exists, session_tag


class LoginRequired(NotAuthorizedException):
    """Answered with a redirect to `/login?next=<the page asked for>` (see errors.py)."""


def safe_next(value: str | None) -> str:
    """A same-site path to return to after sign-in; anything else (another host, a scheme, `//`) becomes `/`."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(char) < 32 for char in value):
        return "/"
    return value


SignedInRequest: TypeAlias = Request[CurrentUser, Any, State]
"""The request of a route whose guard requires a person: `request.user` is theirs (see middleware.py)."""


def person_of(connection: ASGIConnection) -> CurrentUser | None:
    """The person the authentication middleware found, or None (also on routes that need nobody)."""
    return connection.scope.get("user")  # type: ignore[return-value]


def session_cookie(connection: ASGIConnection) -> str:
    """The cookie of this request's session: our own pages', or a partner's embedded pages'."""
    return EMBED_SESSION_COOKIE if flow_partner(connection) else SESSION_COOKIE


def session_of(connection: ASGIConnection) -> str | None:
    """The tag by which the end of this request's session is announced (`sessions.SESSIONS_ENDED`)."""
    return session_tag(connection, session_cookie(connection))


def still_signed_in(connection: ASGIConnection) -> Callable[[], Awaitable[bool]]:
    """For a long-lived response (a live stream): whether its session still stands (not signed out, not expired)."""
    cookie = session_cookie(connection)
    user = person_of(connection)
    ends_at = user.signed_in_at + connection.app.state.settings.session.absolute_timeout_seconds if user else 0.0

    async def alive() -> bool:
        return time.time() < ends_at and await session_exists(connection, cookie)

    return alive


CSRF_SESSION_KEY = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_bound_to_session(connection: ASGIConnection) -> None:
    """A signed-in unsafe request must carry the CSRF token of its own session, not any valid one.

    The CSRF middleware runs this once it has checked the token against the CSRF cookie (`csrf.py`); the session
    remembers the token it was signed in with, so another person's valid token (or cookie) is refused. Embedded
    pages keep their own token in their session (embed/access.py).
    """
    if connection.scope.get("method") in SAFE_METHODS or flow_partner(connection) is not None:
        return
    if person_of(connection) is None:
        return
    bound = connection.scope["session"].get(CSRF_SESSION_KEY)  # type: ignore[union-attr]
    if not isinstance(bound, str):  # a session from before tokens were bound: signing in again binds one
        raise LoginRequired()
    sent = ScopeState.from_scope(connection.scope).csrf_token
    if not isinstance(sent, str) or not secrets.compare_digest(bound, sent):
        raise PermissionDeniedException("CSRF token of another session")


def csrf_token_for_sign_in(request: Request[Any, Any, Any]) -> tuple[str, list[Cookie]]:
    """The CSRF token a new session is bound to, and the cookie that carries it (none if this request set one).

    A token the browser held before signing in is replaced: someone who planted it (a sibling domain can set
    cookies) must not know the token of the session that follows.
    """
    config = csrf_config(request.app.state.settings)
    if config.cookie_name not in request.cookies:  # the middleware gave this request a new one
        return str(ScopeState.from_scope(request.scope).csrf_token), []
    token = generate_csrf_token(config.secret)
    cookie = Cookie(
        key=config.cookie_name,
        value=token,
        path=config.cookie_path,
        secure=config.cookie_secure,
        httponly=config.cookie_httponly,
        samesite=config.cookie_samesite,
        domain=config.cookie_domain,
    )
    return token, [cookie]


async def requires_user(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    if person_of(connection) is None:
        raise LoginRequired()


async def requires_support(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    await requires_user(connection, handler)
    if not connection.user.is_support:
        raise PermissionDeniedException()


async def requires_admin(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    await requires_user(connection, handler)
    if not connection.user.is_admin:
        raise PermissionDeniedException()
