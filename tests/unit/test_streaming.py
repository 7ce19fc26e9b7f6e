"""Long-lived streams leave the middleware stack once their headers are out; the client leaving still ends them."""

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from litestar import Litestar, Request, get
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tests.builders import http_scope
from webapp.streaming import HandedOffStream, outside_the_stack

pytestmark = pytest.mark.timeout(10)


class Recorder(ASGIMiddleware):
    """A middleware that notes when the request leaves it, and adds a header to every response."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-through-the-stack", b"yes")]
            await send(message)

        await next_app(scope, receive, send_marked)
        self.events.append("left the middleware")


def app_streaming(body: Callable[[], AsyncIterator[bytes]], events: list[str], *, wrapped: bool = True) -> Litestar:
    @get("/stream")
    async def stream() -> HandedOffStream:
        return HandedOffStream(body(), media_type="text/event-stream")

    app = Litestar([stream], middleware=[Recorder(events)])
    if wrapped:
        app.asgi_handler = outside_the_stack(app.asgi_handler)
    return app


def server(events: list[str], leaves: asyncio.Event) -> tuple[Receive, Send]:
    """The server's side: `send` notes what goes out; `receive` says the client left once `leaves` is set."""

    async def receive() -> Message:
        await leaves.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            marked = (b"x-through-the-stack", b"yes") in message["headers"]
            events.append("headers through the stack" if marked else "headers")
        elif message["body"]:
            events.append(message["body"].decode())
        elif not message.get("more_body"):
            events.append("end")
            leaves.set()  # as a server does once the response is complete

    return receive, send  # type: ignore[return-value]


async def test_a_stream_body_is_sent_after_the_middleware_stack_has_returned() -> None:
    events: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        yield b"second"

    receive, send = server(events, asyncio.Event())
    await app_streaming(body, events)(http_scope("GET", "/stream"), receive, send)
    assert events == ["headers through the stack", "left the middleware", "first", "second", "end"]


async def test_without_the_wrapper_a_stream_is_sent_inside_the_stack_as_usual() -> None:
    events: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"first"

    receive, send = server(events, asyncio.Event())
    await app_streaming(body, events, wrapped=False)(http_scope("GET", "/stream"), receive, send)
    assert events == ["headers through the stack", "first", "end", "left the middleware"]


async def test_the_client_leaving_ends_the_stream_and_its_clean_up_runs() -> None:
    events: list[str] = []
    leaves = asyncio.Event()
    forever = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await forever.wait()  # a quiet order: nothing to send until it changes
            yield b"never"
        finally:
            events.append("cleaned up")

    receive, send = server(events, leaves)
    request = asyncio.ensure_future(app_streaming(body, events)(http_scope("GET", "/stream"), receive, send))
    await until(lambda: "first" in events)
    leaves.set()
    await asyncio.wait_for(request, 5)
    assert events == ["headers through the stack", "left the middleware", "first", "cleaned up"]


async def test_a_failing_stream_fails_its_request_instead_of_hanging() -> None:
    events: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        raise RuntimeError("the database went away")

    receive, send = server(events, asyncio.Event())  # the client stays: only the failure can end it
    with pytest.raises(RuntimeError, match="went away"):
        await asyncio.wait_for(app_streaming(body, events)(http_scope("GET", "/stream"), receive, send), 5)
    assert events == ["headers through the stack", "left the middleware", "first"]


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


class SessionLike(ASGIMiddleware):
    """Decodes a session into the scope and, as a session middleware does, writes it when the headers go out."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["session"] = {"id_token": "a long signed token"}  # type: ignore[typeddict-unknown-key]

        async def send_stored(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.events.append(f"session stored: {scope.get('session')}")
            await send(message)

        await next_app(scope, receive, send_stored)


async def test_a_handed_off_stream_does_not_keep_the_decoded_session_once_its_headers_are_out() -> None:
    events: list[str] = []

    @get("/stream")
    async def stream(request: Request) -> HandedOffStream:
        async def body() -> AsyncIterator[bytes]:
            yield f"drawn with a session: {'session' in request.scope}".encode()

        return HandedOffStream(body(), media_type="text/event-stream")

    app = Litestar([stream], middleware=[SessionLike(events)])
    app.asgi_handler = outside_the_stack(app.asgi_handler)
    receive, send = server(events, asyncio.Event())
    await app(http_scope("GET", "/stream"), receive, send)
    assert events == [
        "session stored: {'id_token': 'a long signed token'}",
        "headers",
        "drawn with a session: False",
        "end",
    ]
