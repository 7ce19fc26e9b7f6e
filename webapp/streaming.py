"""Long-lived streams (the live order pages) sent outside the per-request middleware stack once their headers are out.

A live stream lasts as long as its page is open. Sent as Litestar sends any response, every layer around the
request (exception capture, the router, sessions, authentication, metrics, rate limits, CSRF, the route) stays on
its call stack all that time and wraps every message it sends: per watcher, their frames and closures, a task group
and its tasks. Here the request goes through the whole stack like any other (the session and the guards decide,
the headers and cookies are set) and, once its headers are sent, its body is handed to the wrapper around the app's
handler (`outside_the_stack`), which streams it with one task and watches for the client leaving.
Buys: the live fan-out's memory per watcher (docs/PERFORMANCE.md).
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from litestar import Request
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import ASGIApp, Receive, Scope, Send

HANDOFF = "webapp.stream_handoff"
"""The scope key under which `outside_the_stack` waits for a stream's body."""


class HandedOffStream(Stream):
    """A `Stream` whose body is sent by `outside_the_stack` when the app is wrapped in it (else as usual)."""

    def to_asgi_response(self, app: Any, request: Request, **kwargs: Any) -> ASGIResponse:
        response = cast(ASGIStreamingResponse, super().to_asgi_response(app, request, **kwargs))
        return cast(ASGIResponse, _HandedOff(response))


class _HandedOff:
    """Litestar only calls a response: as an ASGI app."""

    def __init__(self, response: ASGIStreamingResponse) -> None:
        self.response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taker: list[AsyncIterator[Any]] | None = scope.get(HANDOFF)  # type: ignore[assignment]
        if taker is None or self.response.is_head_response:
            await self.response(scope, receive, send)
            return
        await self.response.start_response(send=send)
        # The session went out with the headers just sent (its cookie, its store); what the body draws was decided by
        # the handler (the person, the language), so the decoded session is not kept for the stream's life.
        scope.pop("session", None)  # type: ignore[misc]
        taker.append(self.response.iterator)  # type: ignore[arg-type]


def outside_the_stack(app: ASGIApp) -> ASGIApp:
    """Wrap the app's handler: a `HandedOffStream`'s body is sent here, after the stack has returned."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        handed: list[AsyncIterator[Any]] = []
        scope[HANDOFF] = handed  # type: ignore[literal-required]
        await app(scope, receive, send)
        if handed:
            del scope[HANDOFF]  # type: ignore[misc]
            await _stream(handed[0], receive, send)

    return handle


async def _stream(body: AsyncIterator[bytes | str], receive: Receive, send: Send) -> None:
    """Send `body` until it ends or the client leaves (then it is cancelled, so its clean-up runs)."""
    sending = asyncio.ensure_future(_send_all(body, send))
    listening = asyncio.ensure_future(_disconnect(receive))
    listening.add_done_callback(lambda _: sending.cancel())
    try:
        await asyncio.wait([sending])
    finally:
        listening.cancel()
        sending.cancel()  # when this request itself is cancelled (the server stopping)
    if not sending.cancelled():
        sending.result()  # a failure of the body is the request's


async def _disconnect(receive: Receive) -> None:
    """Return once the client has left (the server also says so once the body has ended)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_all(body: AsyncIterator[bytes | str], send: Send) -> None:
    async for chunk in body:
        await send({"type": "http.response.body", "body": _bytes(chunk), "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _bytes(chunk: bytes | str) -> bytes:
    return chunk if isinstance(chunk, bytes) else chunk.encode()
