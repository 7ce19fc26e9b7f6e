"""Route guards: anonymous people are sent to sign in (and back); a missing role is a 403 page."""

from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from webapp.auth.session import CurrentUser, session_user
from webapp.flows import flow_partner


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


def current_user(connection: ASGIConnection) -> CurrentUser | None:
    """The signed-in person, if their session belongs where the request is: our own pages or one partner's."""
    settings = connection.app.state.settings
    user = session_user(connection, settings.session.absolute_timeout_seconds)
    if user is None or user.partner != flow_partner(connection):
        return None
    return user


def requires_user(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    if current_user(connection) is None:
        raise LoginRequired()


def requires_support(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    requires_user(connection, handler)
    user = current_user(connection)
    if user is None or not user.is_support:
        raise PermissionDeniedException()


def requires_admin(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    requires_user(connection, handler)
    user = current_user(connection)
    if user is None or not user.is_admin:
        raise PermissionDeniedException()
