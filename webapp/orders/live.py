"""Live order updates through Litestar's channels plugin: a memory backend here, PostgreSQL when scaled out.

Only a signal crosses the channel; each subscriber renders the fragment itself, in its own language.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response import ServerSentEvent, ServerSentEventMessage

from webapp.metrics import SSE_STREAMS

KEEP_ALIVE_SECONDS = 15


def make_channels() -> ChannelsPlugin:
    return ChannelsPlugin(backend=MemoryChannelsBackend(), arbitrary_channels_allowed=True)


def order_channel(order_id: int) -> str:
    return f"order:{order_id}"


def publish_change(channels: ChannelsPlugin, order_id: int) -> None:
    with contextlib.suppress(RuntimeError):  # not started yet (receipts replayed at start-up): nobody listens
        channels.publish({"order": order_id}, [order_channel(order_id)])


def change_stream(
    channels: ChannelsPlugin, order_id: int, render: Callable[[], Awaitable[tuple[str, bool]]], *, event: str
) -> ServerSentEvent:
    """An SSE response: `render()`'s fragment now and after every change of the order, until it says it is done.

    `render` returns (html, done); the stream then sends the event `done` so the page stops listening.
    """

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        with SSE_STREAMS.track_inprogress():
            async for message in _stream():
                yield message

    async def _stream() -> AsyncIterator[ServerSentEventMessage]:
        async with channels.start_subscription([order_channel(order_id)]) as subscriber:
            html, done = await render()
            yield ServerSentEventMessage(data=html, event=event)
            changes = subscriber.iter_events()
            next_change = asyncio.ensure_future(anext(changes))
            try:
                while not done:
                    finished, _ = await asyncio.wait({next_change}, timeout=KEEP_ALIVE_SECONDS)
                    if not finished:
                        yield ServerSentEventMessage(comment="keep-alive")
                        continue
                    next_change = asyncio.ensure_future(anext(changes))
                    html, done = await render()
                    yield ServerSentEventMessage(data=html, event=event)
            finally:
                next_change.cancel()
            yield ServerSentEventMessage(data="", event="done")

    return ServerSentEvent(stream(), headers={"cache-control": "no-store", "x-accel-buffering": "no"})
