"""Live order updates through Litestar's channels plugin, with the backend that fits the deployment.

PostgreSQL LISTEN/NOTIFY when the database is PostgreSQL (every instance hears every change), Redis when
`CHANNELS_REDIS_URL` is set, memory for SQLite (one instance by definition). Only a signal crosses the channel;
each subscriber renders the fragment itself, in its own language.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import asyncpg
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy.engine import make_url

from webapp.metrics import SSE_STREAMS

KEEP_ALIVE_SECONDS = 15


def channels_backend(database_url: str, redis_url: str | None) -> ChannelsBackend:
    """The one place the backend is chosen."""
    if redis_url:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend
        from redis.asyncio import Redis

        return RedisChannelsPubSubBackend(redis=Redis.from_url(redis_url), key_prefix="CASHOUT_CHANNELS")
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PatientPgChannelsBackend(dsn=url.set(drivername="postgresql").render_as_string(hide_password=False))
    return MemoryChannelsBackend()


class PatientPgChannelsBackend(AsyncPgChannelsBackend):
    """LISTEN/NOTIFY that lets the app start while PostgreSQL is down (`/readyz` says so).

    The listening connection is made at start-up if it can be, else at the first subscription. Notifications go
    out on one kept connection (Litestar's backend opens and closes one per publish).
    """

    async def on_startup(self) -> None:
        self._listener_lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()
        self._queue = asyncio.Queue()
        self._listener_conn = None  # type: ignore[assignment]
        self._publisher: asyncpg.Connection | None = None
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            self._listener_conn = await self._connect()

    async def on_shutdown(self) -> None:
        async with self._listener_lock:
            if self._listener_conn is not None:
                await self._listener_conn.close()
            self._subscribed_channels.clear()
            self._queue = None
        if self._publisher is not None:
            await self._publisher.close()

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        if self._queue is None:
            raise RuntimeError("the channels backend is not started")
        async with self._publish_lock:
            if self._publisher is None or self._publisher.is_closed():
                self._publisher = await self._connect()
            for channel in channels:
                await self._publisher.execute("SELECT pg_notify($1, $2);", channel, data.decode("utf-8"))

    async def subscribe(self, channels: Iterable[str]) -> None:
        async with self._listener_lock:
            if self._listener_conn is None or self._listener_conn.is_closed():
                self._listener_conn = await self._connect()
                self._subscribed_channels.clear()
        await super().subscribe(channels)


def make_channels(database_url: str = "sqlite://", redis_url: str | None = None) -> ChannelsPlugin:
    return ChannelsPlugin(backend=channels_backend(database_url, redis_url), arbitrary_channels_allowed=True)


def order_channel(order_id: int) -> str:
    return f"order:{order_id}"


def publish_change(channels: ChannelsPlugin, order_id: int) -> None:
    with contextlib.suppress(RuntimeError):  # not started yet (receipts replayed at start-up): nobody listens
        channels.publish({"order": order_id}, [order_channel(order_id)])


def change_stream(
    channels: ChannelsPlugin,
    order_id: int,
    render: Callable[[], Awaitable[tuple[str, bool]]],
    *,
    event: str,
    alive: Callable[[], Awaitable[bool]],
) -> ServerSentEvent:
    """An SSE response: `render()`'s fragment now and after every change of the order, until it says it is done.

    `render` returns (html, done); the stream then sends the event `done` so the page stops listening. It also
    ends, within a keep-alive interval, once `alive()` says the viewer's session is over (signed out, expired):
    a stream must not outlive the right to see it.
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
                    if not await alive():
                        break
                    if not finished:
                        yield ServerSentEventMessage(comment="keep-alive")
                        continue
                    next_change = asyncio.ensure_future(anext(changes))
                    html, done = await render()
                    yield ServerSentEventMessage(data=html, event=event)
            finally:
                next_change.cancel()
            yield ServerSentEventMessage(data="", event="done")

    return ServerSentEvent(stream())  # Litestar sets cache-control: no-cache and x-accel-buffering: no itself
