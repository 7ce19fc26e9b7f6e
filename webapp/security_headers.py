"""Security headers on every response, 404s included: CSP with a per-request nonce, framing, sniffing, referrer.

Added in a `before_send` hook rather than middleware because Litestar runs middleware only for matched routes.
"""

import secrets
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

HEADER_STATE_KEY = "csp_nonce"
FRAMING_STATE_KEY = "frame_ancestors"
IMAGES_STATE_KEY = "image_origins"


def csp_nonce(scope: Scope) -> str:
    """The request's nonce, made on first use so the template and the header agree."""
    state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
    if HEADER_STATE_KEY not in state:
        state[HEADER_STATE_KEY] = secrets.token_urlsafe(18)
    return state[HEADER_STATE_KEY]


def allow_framing(scope: Scope, origins: list[str], *, images_from: str | None = None) -> None:
    """Let exactly these origins frame this response (a partner's embedded page), and show its logo."""
    state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
    state[FRAMING_STATE_KEY] = " ".join(origins) or "'none'"
    if images_from:
        parts = urlsplit(images_from)
        state[IMAGES_STATE_KEY] = f"{parts.scheme}://{parts.netloc}"


def content_security_policy(nonce: str | None, frame_ancestors: str = "'none'", image_origins: str = "") -> str:
    """Without a nonce (nothing on the page asked for one: JSON, a redirect), no inline script or style runs."""
    inline = f" 'nonce-{nonce}'" if nonce else ""
    directives: Mapping[str, str] = {
        "default-src": "'self'",
        "script-src": f"'self'{inline}",
        "style-src": f"'self'{inline}",
        "img-src": f"'self' data: {image_origins}".strip(),
        "connect-src": "'self'",
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "frame-ancestors": frame_ancestors,
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


HSTS = "max-age=63072000; includeSubDomains"
"""Two years, as hstspreload.org asks; sent in production only, where PUBLIC_BASE_URL must be https."""


def security_headers(*, hsts: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    """The `before_send` hook; with `hsts`, browsers are also told to use https only from now on."""

    async def hook(message: Message, scope: Scope) -> None:
        await add_security_headers(message, scope)
        if hsts and message["type"] == "http.response.start":
            MutableScopeHeaders.from_message(message).setdefault("Strict-Transport-Security", HSTS)

    return hook


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    state = scope.get("state", {})
    frame_ancestors = state.get(FRAMING_STATE_KEY)
    nonce = state.get(HEADER_STATE_KEY)
    policy = content_security_policy(nonce, frame_ancestors or "'none'", state.get(IMAGES_STATE_KEY, ""))
    headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if frame_ancestors is None:  # X-Frame-Options knows no list of origins: CSP alone decides on embedded pages
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
