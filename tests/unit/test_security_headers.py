"""Security headers: added to every answer, never over a header the answer set itself."""

from litestar.types import Message

from webapp.security_headers import FRAMING_STATE_KEY, HEADER_STATE_KEY, security_headers


async def sent(state: dict[str, str], headers: list[tuple[bytes, bytes]], *, hsts: bool = False) -> dict[bytes, bytes]:
    message: Message = {"type": "http.response.start", "status": 200, "headers": headers}
    await security_headers(hsts=hsts)(message, {"type": "http", "state": state})  # type: ignore[typeddict-item]
    names = [name for name, _ in message["headers"]]
    assert len(names) == len(set(names)), names  # nothing twice
    return dict(message["headers"])


async def test_an_answer_without_a_nonce_gets_the_strict_headers() -> None:
    headers = await sent({}, [(b"content-type", b"application/json")])
    assert headers[b"content-type"] == b"application/json"
    assert b"script-src 'self';" in headers[b"content-security-policy"]
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert b"strict-transport-security" not in headers


async def test_a_page_gets_its_nonce_and_an_embedded_page_its_framing() -> None:
    headers = await sent({HEADER_STATE_KEY: "n0nce", FRAMING_STATE_KEY: "https://partner.example"}, [], hsts=True)
    assert b"script-src 'self' 'nonce-n0nce'" in headers[b"content-security-policy"]
    assert b"frame-ancestors https://partner.example" in headers[b"content-security-policy"]
    assert b"x-frame-options" not in headers  # CSP alone decides who frames an embedded page
    assert headers[b"strict-transport-security"].startswith(b"max-age=")


async def test_a_header_the_answer_set_itself_is_kept() -> None:
    headers = await sent({}, [(b"Content-Security-Policy", b"default-src 'none'")])
    assert headers[b"Content-Security-Policy"] == b"default-src 'none'"
    assert b"content-security-policy" not in headers
    assert headers[b"referrer-policy"] == b"strict-origin-when-cross-origin"
