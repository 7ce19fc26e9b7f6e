"""Who is asking: one authentication middleware puts the signed-in person, or None, on `request.user`.

It is the only reader of the session's person. A session counts only where it was opened: our own pages, or the
hosted pages of the partner whose launch token opened it. Routes that need nobody say so (`exclude_from_auth`),
and then carry no `user` at all. Guards (`guards.py`) decide by role from `request.user`.
"""

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware

from webapp.auth.session import session_user
from webapp.flows import flow_partner


class PersonMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        settings = connection.app.state.settings
        user = session_user(connection, settings.session.absolute_timeout_seconds)
        if user is not None and user.partner != flow_partner(connection):
            user = None
        return AuthenticationResult(user=user, auth=None)


def authentication(exclude: list[str] | None = None) -> DefineMiddleware:
    """The middleware, placed after the session middleware of its pages (ours, or a partner's embedded ones)."""
    return DefineMiddleware(PersonMiddleware, exclude=exclude)
