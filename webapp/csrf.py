"""CSRF tokens: Litestar's double-submit cookie, with `SESSION_SECRET` rotating without a 403.

Litestar's own middleware checks a token's HMAC under one secret. During a rotation (`SESSION_PREVIOUS_SECRET`
set, docs/operations.md) a token minted under the previous secret still counts, so nobody signed in before the
change is refused on their next form post; new tokens are minted under the current secret.

A request the token check lets through then meets `session_check` (the token must be the one the person's session
was bound to, `auth/guards.py::csrf_bound_to_session`). It runs here, not as an app-wide guard: Litestar copies the
route handler for every guard on every request, ~17 µs of each (docs/PERFORMANCE.md, the request path).
"""

from collections.abc import Callable
from secrets import compare_digest

from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, CSRFMiddleware, generate_csrf_hash
from litestar.types import ASGIApp, Receive, Scope, Send

from webapp.config import Settings
from webapp.flows import EMBED_PREFIX


def csrf_config(settings: Settings) -> CSRFConfig:
    """Embedded pages check a token kept in their session: this cookie is not sent inside a partner's frame."""
    return CSRFConfig(
        secret=settings.session.secret.get_secret_value(),
        cookie_secure=settings.is_production,
        cookie_samesite="lax",
        exclude=["/healthz", "/readyz", f"^{EMBED_PREFIX}/"],
    )


SessionCheck = Callable[[ASGIConnection], None]
"""Raises to refuse a request whose CSRF token is valid (an `HTTPException`, answered by the app's handlers)."""


class RotatingCsrfMiddleware(CSRFMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        config: CSRFConfig,
        previous_secrets: tuple[str, ...] = (),
        session_check: SessionCheck | None = None,
    ) -> None:
        super().__init__(app if session_check is None else _checked_first(session_check, app), config)
        self.secrets = (config.secret, *previous_secrets)

    def _decode_csrf_token(self, token: str) -> str | None:
        if len(token) < CSRF_SECRET_LENGTH + 1:
            return None
        token_secret, sent_hash = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
        for secret in self.secrets:
            if compare_digest(sent_hash, generate_csrf_hash(token=token_secret, secret=secret)):
                return token_secret
        return None


def _checked_first(check: SessionCheck, app: ASGIApp) -> ASGIApp:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        check(ASGIConnection(scope))
        await app(scope, receive, send)

    return handle


def csrf_middleware(settings: Settings, session_check: SessionCheck | None = None) -> DefineMiddleware:
    _current, *previous = settings.session.secrets
    return DefineMiddleware(
        RotatingCsrfMiddleware,
        config=csrf_config(settings),
        previous_secrets=tuple(previous),
        session_check=session_check,
    )
