"""Security headers on every response, 404s included: CSP with a per-request nonce, framing, sniffing, referrer.

Added in a `before_send` hook rather than middleware because Litestar runs middleware only for matched routes.
The headers of an answer without a nonce (JSON, a redirect, a file) are encoded once and reused: ~10 µs of each
such request (docs/PERFORMANCE.md, the request path).
"""

import functools
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from urllib.parse import urlsplit

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
    always = ((b"strict-transport-security", HSTS.encode()),) if hsts else ()

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            _add_missing(message, (*_headers_of(scope.get("state", {})), *always))

    return hook


add_security_headers = security_headers(hsts=False)
"""The hook without HSTS (the sandbox's, on plain http)."""


def _headers_of(state: Mapping[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    frame_ancestors, nonce = state.get(FRAMING_STATE_KEY), state.get(HEADER_STATE_KEY)
    if nonce is None:  # most answers (JSON, redirects, files): the same headers every time, encoded once
        return _headers_without_nonce(frame_ancestors, state.get(IMAGES_STATE_KEY, ""))
    return _encoded(
        content_security_policy(nonce, frame_ancestors or "'none'", state.get(IMAGES_STATE_KEY, "")),
        framed=frame_ancestors is not None,
    )


@functools.lru_cache(maxsize=256)  # per framing: our own pages, and each partner's embedded pages
def _headers_without_nonce(frame_ancestors: str | None, image_origins: str) -> tuple[tuple[bytes, bytes], ...]:
    policy = content_security_policy(None, frame_ancestors or "'none'", image_origins)
    return _encoded(policy, framed=frame_ancestors is not None)


def _encoded(policy: str, *, framed: bool) -> tuple[tuple[bytes, bytes], ...]:
    headers = [
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if not framed:  # X-Frame-Options knows no list of origins: CSP alone decides on embedded pages
        headers.append((b"x-frame-options", b"DENY"))
    return tuple(headers)


def _add_missing(message: Message, headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Each header the response does not set itself (a route may choose its own policy)."""
    raw = message.setdefault("headers", [])  # type: ignore[typeddict-item]
    if not isinstance(raw, list):
        raw = message["headers"] = list(raw)  # type: ignore[typeddict-item]
    present = {name.lower() for name, _ in raw}
    raw.extend(header for header in headers if header[0] not in present)
