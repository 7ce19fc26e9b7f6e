"""CSRF tokens: Litestar's double-submit cookie, with `SESSION_SECRET` rotating without a 403.

Litestar's own middleware checks a token's HMAC under one secret. During a rotation (`SESSION_PREVIOUS_SECRET`
set, docs/operations.md) a token minted under the previous secret still counts, so nobody signed in before the
change is refused on their next form post; new tokens are minted under the current secret.
"""

from secrets import compare_digest

from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, CSRFMiddleware, generate_csrf_hash
from litestar.types import ASGIApp

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


class RotatingCsrfMiddleware(CSRFMiddleware):
    def __init__(self, app: ASGIApp, config: CSRFConfig, previous_secrets: tuple[str, ...] = ()) -> None:
        super().__init__(app, config)
        self.secrets = (config.secret, *previous_secrets)

    def _decode_csrf_token(self, token: str) -> str | None:
        if len(token) < CSRF_SECRET_LENGTH + 1:
            return None
        token_secret, sent_hash = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
        for secret in self.secrets:
            if compare_digest(sent_hash, generate_csrf_hash(token=token_secret, secret=secret)):
                return token_secret
        return None


def csrf_middleware(settings: Settings) -> DefineMiddleware:
    _current, *previous = settings.session.secrets
    return DefineMiddleware(RotatingCsrfMiddleware, config=csrf_config(settings), previous_secrets=tuple(previous))
