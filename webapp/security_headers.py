"""Security headers on every response, 404s included: CSP with a per-request nonce, framing, sniffing, referrer.

Added in a `before_send` hook rather than middleware because Litestar runs middleware only for matched routes.
"""

import secrets
from collections.abc import Mapping

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

HEADER_STATE_KEY = "csp_nonce"


def csp_nonce(scope: Scope) -> str:
    """The request's nonce, made on first use so the template and the header agree."""
    state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
    if HEADER_STATE_KEY not in state:
        state[HEADER_STATE_KEY] = secrets.token_urlsafe(18)
    return state[HEADER_STATE_KEY]


def content_security_policy(nonce: str, frame_ancestors: str = "'none'") -> str:
    directives: Mapping[str, str] = {
        "default-src": "'self'",
        "script-src": f"'self' 'nonce-{nonce}'",
        "style-src": f"'self' 'nonce-{nonce}'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "frame-ancestors": frame_ancestors,
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce(scope)))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
