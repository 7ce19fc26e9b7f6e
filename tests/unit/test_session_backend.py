"""The session backend's bookkeeping around a response's headers, through Litestar's session middleware."""

from collections.abc import AsyncIterator

from litestar import Litestar, Request, get
from litestar.response import Stream
from litestar.stores.memory import MemoryStore
from litestar.testing import AsyncTestClient

from webapp.sessions import LOADED_STATE_KEY, LazySessionConfig


async def test_a_streamed_response_does_not_keep_the_loaded_form_of_its_session() -> None:
    """A live stream lasts hours: the copy kept to see whether the session changed goes once the headers are out."""
    kept: list[bool] = []

    @get("/sign-in")
    async def sign_in(request: Request) -> str:
        request.session["user"] = {"id": 1, "email": "user@example.com"}
        return "in"

    @get("/stream")
    async def stream(request: Request) -> Stream:
        async def body() -> AsyncIterator[bytes]:
            kept.append(LOADED_STATE_KEY in request.scope["state"])  # the headers are out
            yield b"streamed"

        kept.append(LOADED_STATE_KEY in request.scope["state"])  # the handler: still there

        return Stream(body())

    config = LazySessionConfig(store="sessions")
    app = Litestar([sign_in, stream], middleware=[config.middleware], stores={"sessions": MemoryStore()})
    async with AsyncTestClient(app) as client:
        await client.get("/sign-in")
        answer = await client.get("/stream")
    assert answer.text == "streamed" and "session=" in answer.headers["set-cookie"]
    assert kept == [True, False]
