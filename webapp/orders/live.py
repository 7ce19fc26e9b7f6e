"""Live order updates through Litestar's channels plugin, with the backend that fits the deployment.

PostgreSQL LISTEN/NOTIFY when the database is PostgreSQL (every instance hears every change), Redis when
`CHANNELS_REDIS_URL` is set, memory for SQLite (one instance by definition). The instance that commits a change
reads the order's status card once and publishes it (`LivePublisher`); every instance draws its watchers' order
pages from the card it heard, without a database read (`cashout_live_drawings_total{source}` counts both kinds).
Each instance subscribes once per watched order, however many streams show it (`LiveOrders`), and draws and
encodes a changed fragment once per change for all its streams that show it alike (same fragment, language and
flow). A stream is a plain stream of those encoded messages: Litestar's `ServerSentEvent` would encode each
message once per stream, hop to a thread to open it, and keep the last message and its text alive per stream. Its
body is sent outside the middleware stack (`streaming.py::HandedOffStream`).
Figures: docs/PERFORMANCE.md (live fan-out).
"""

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable, Iterable, Mapping, Set

import asyncpg
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response import ServerSentEventMessage, Stream
from sqlalchemy.engine import make_url

from webapp.metrics import SSE_STREAMS
from webapp.orders.status_card import StatusCard
from webapp.sessions import SESSIONS_ENDED
from webapp.streaming import HandedOffStream

KEEP_ALIVE_SECONDS = 15
TICK_SLICES = 15
"""The watched orders are woken for their keep-alive in this many slices over an interval, by order id."""
LIVE_STREAM = "live_stream"
"""The route option of a live stream: it lasts as long as a page is open, so per-request HTTP metrics (whose
latency would be the stream's lifetime) step aside; `cashout_sse_streams_open` counts streams instead."""

logger = logging.getLogger(__name__)


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
    """LISTEN/NOTIFY that lets the app start while PostgreSQL is down (`/readyz` says so) and outlives its restarts.

    The listening connection is made at start-up if it can be, else at the first subscription. When it is lost
    (PostgreSQL restarted, a network cut) it is made again with backoff and every channel is listened to again;
    notifications sent meanwhile are lost, so each listened channel then gets one `RESYNC` message and its
    streams look again. Notifications go out on one kept connection (Litestar's backend opens and closes one per
    publish), made again once if it was lost; a notification that still cannot be sent is logged and dropped
    (raising would end Litestar's publishing task for good).

    `publish` only hands its notifications to one sending task, which sends all it was handed meanwhile in one
    statement: the cards of one judged batch of IPNs (sixteen orders under load) take one round trip instead of
    sixteen (docs/PERFORMANCE.md, IPN intake). They go in the order handed over; PostgreSQL delivers two identical
    notifications of one channel sent in one statement as one.
    """

    async def on_startup(self) -> None:
        self._listener_lock = asyncio.Lock()
        self._queue = asyncio.Queue()
        self._listener_conn = None  # type: ignore[assignment]
        self._publisher: asyncpg.Connection | None = None
        self._relistening: asyncio.Task[None] | None = None
        self._to_send: list[tuple[str, str]] = []
        self._handed_over = asyncio.Event()
        self._sender = asyncio.create_task(self._send_handed_over(), name="live-notify")
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            self._listener_conn = await self._listen()

    async def on_shutdown(self) -> None:
        self._queue = None  # from now on a lost connection is not made again
        if self._relistening is not None:
            self._relistening.cancel()
        self._handed_over.set()
        await self._sender  # sends what was handed over last, then stops
        async with self._listener_lock:
            if self._listener_conn is not None:
                await self._listener_conn.close()
            self._subscribed_channels.clear()
        if self._publisher is not None:
            await self._publisher.close()

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        if self._queue is None:
            raise RuntimeError("the channels backend is not started")
        payload = data.decode("utf-8")
        self._to_send += [(channel, payload) for channel in channels]
        self._handed_over.set()

    async def _send_handed_over(self) -> None:
        while self._queue is not None:  # until the backend stops
            await self._handed_over.wait()
            self._handed_over.clear()
            while self._to_send:
                batch, self._to_send = self._to_send[:NOTIFY_BATCH], self._to_send[NOTIFY_BATCH:]
                try:
                    await self._send(batch)
                except Exception:  # a bug here must not end live updates for good
                    logger.exception("live updates not sent")

    async def _send(self, notifications: list[tuple[str, str]]) -> None:
        channels, payloads = [channel for channel, _ in notifications], [payload for _, payload in notifications]
        for attempt in (1, 2):
            try:
                if self._publisher is None or self._publisher.is_closed():
                    self._publisher = await self._connect()
                await self._publisher.execute(NOTIFY_EACH, channels, payloads)
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if self._publisher is not None:
                    self._publisher.terminate()
                    self._publisher = None
                if attempt == 2:
                    logger.warning("live update not sent (%s): its viewers see it at their next change", exc)

    async def subscribe(self, channels: Iterable[str]) -> None:
        async with self._listener_lock:
            await self._ensure_listening()
        await super().subscribe(channels)

    async def _listen(self) -> asyncpg.Connection:
        connection = await self._connect()
        connection.add_termination_listener(self._lost)
        return connection

    async def _ensure_listening(self) -> None:
        """Under the listener lock: a live listening connection for every subscribed channel."""
        if self._listener_conn is not None and not self._listener_conn.is_closed():
            return
        connection = await self._listen()
        try:
            for channel in self._subscribed_channels:
                await connection.add_listener(channel, self._listener)  # type: ignore[arg-type]
        except BaseException:
            connection.terminate()
            raise
        self._listener_conn = connection

    def _lost(self, connection: asyncpg.Connection) -> None:
        if self._queue is None or connection is not self._listener_conn or self._relistening_now():
            return
        logger.warning("live updates: the LISTEN connection to PostgreSQL was lost; listening again")
        self._relistening = asyncio.get_running_loop().create_task(self._listen_again())

    def _relistening_now(self) -> bool:
        return self._relistening is not None and not self._relistening.done()

    async def _listen_again(self) -> None:
        delay = RELISTEN_FIRST_DELAY
        while self._queue is not None:
            try:
                async with self._listener_lock:
                    await self._ensure_listening()
                break
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, RELISTEN_MAX_DELAY)
        queue = self._queue
        for channel in list(self._subscribed_channels) if queue is not None else []:
            queue.put_nowait((channel, RESYNC))


NOTIFY_EACH = "SELECT pg_notify(channel, payload) FROM unnest($1::text[], $2::text[]) AS sent(channel, payload)"
"""Notifications in one statement, delivered in the order of the arrays (a function scan keeps it)."""
NOTIFY_BATCH = 500
"""Notifications per statement at most (each up to 8 000 bytes)."""
RESYNC = b'{"resync": true}'
"""Sent on every listened channel after the listening connection was made again: look again, something may
have changed unheard."""
RELISTEN_FIRST_DELAY = 0.5
RELISTEN_MAX_DELAY = 10.0


def make_channels(database_url: str = "sqlite://", redis_url: str | None = None) -> ChannelsPlugin:
    return ChannelsPlugin(backend=channels_backend(database_url, redis_url), arbitrary_channels_allowed=True)


def order_channel(order_id: int) -> str:
    return f"order:{order_id}"


MAX_CARD_BYTES = 7000
"""A notification carries its card only up to this size (PostgreSQL refuses a NOTIFY payload over 8 000 bytes; a
card is ~0.5 KiB, a long rejection message could make it more): beyond it, a signal, and watchers read the order."""


def publish_change(channels: ChannelsPlugin, order_id: int, card: StatusCard | None = None) -> None:
    """Tell every instance's watchers of the order that it changed, with its status card when there is one."""
    message = json.dumps({"order": order_id, "card": card.wire()} if card else {"order": order_id}).encode()
    if len(message) > MAX_CARD_BYTES:
        message = json.dumps({"order": order_id}).encode()
    with contextlib.suppress(RuntimeError):  # not started yet (receipts replayed at start-up): nobody listens
        channels.publish(message, [order_channel(order_id)])


def card_of(message: bytes) -> StatusCard | None:
    """The status card a live update carried, or None (a signal, a resync, or anything unreadable: read it)."""
    try:
        return StatusCard.from_wire(json.loads(message)["card"])
    except (ValueError, KeyError, TypeError):
        return None


ReadCards = Callable[[Collection[int]], Awaitable[Mapping[int, StatusCard]]]


class LivePublisher:
    """The commit subscriber of the owner of status changes: each changed order's watchers hear of it, everywhere.

    With the order's status card, read here once after the commit instead of by every instance that shows it.

    While it runs (`running()`, the app's lifespan) a commit only hands over its order ids; one task reads the cards
    of every order handed over since its last read in one statement and publishes them, so cards go out in the order
    of the commits they follow and each shows at least the change that sent it. Outside it (one-off commands) a
    signal goes out alone. A card that cannot be read (the database gone for a moment) goes out as a signal.
    Buys: the live fan-out's relaying instances draw without a database read (docs/PERFORMANCE.md).
    """

    def __init__(self, channels: ChannelsPlugin, read_cards: ReadCards) -> None:
        self.channels = channels
        self._read_cards = read_cards
        self._pending: set[int] = set()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def __call__(self, order_ids: Set[int]) -> None:
        if self._wake is None:
            for order_id in sorted(order_ids):
                publish_change(self.channels, order_id)
            return
        self._pending.update(order_ids)
        self._wake.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        wake = self._wake = asyncio.Event()  # of this loop: an app may be started again on another (tests)
        self._task = asyncio.create_task(self._publish(wake))
        try:
            yield
        finally:
            task, self._task, self._wake = self._task, None, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self(frozenset(self._pending))  # handed over but not yet read: as signals
            self._pending.clear()

    async def _publish(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            order_ids, self._pending = self._pending, set()
            try:
                cards = await self._read_cards(order_ids)
            except Exception:
                logger.warning("live update cards not read: their watchers read the orders", exc_info=True)
                cards = {}
            for order_id in sorted(order_ids):
                publish_change(self.channels, order_id, cards.get(order_id))


Render = Callable[[StatusCard | None], Awaitable[tuple[str, bool]]]
"""Draws a stream's fragment: (html, done). From the status card a live update brought, or, given None (the
stream's first drawing, a resync, an update that carried no card), from the database."""
Draw = Callable[[StatusCard], tuple[str, bool]]
"""Draws a stream's fragment from a status card alone, at once: no database, nothing to wait for."""
Drawing = tuple[bytes, bool]
"""An encoded SSE message and whether it is the stream's last."""


class OrderWatch:
    """One order watched on this instance: how many changes were heard, and the fragments drawn for the last."""

    def __init__(self, subscription: "asyncio.Future[Subscriber]") -> None:
        self.subscription = subscription
        self.reader: asyncio.Task[None] | None = None
        self.viewers = 0
        self.generation = 0
        self.ticks = 0
        """Keep-alive intervals passed (`LiveOrders` ticks each watch once an interval)."""
        self.card: StatusCard | None = None
        """The card the last change brought, if it brought one."""
        self._changed = asyncio.Event()
        self._drawn: dict[Hashable, asyncio.Future[Drawing] | Drawing] = {}

    def changed(self, card: StatusCard | None = None) -> None:
        if card is not None and self.card is not None and card.version < self.card.version:
            return  # an older card heard after a newer one: two instances changed the order at once
        self.card = card
        self.generation += 1
        self._drawn.clear()  # a fragment drawn before this change may not show it
        self.wake()

    def wake(self) -> None:
        """Let every stream waiting on this order look again (at a change, a keep-alive, a session ending)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def tick(self) -> None:
        """A keep-alive interval has passed: every stream sends a keep-alive and checks its session."""
        self.ticks += 1
        self.wake()

    async def changed_since(self, seen: int) -> bool:
        """Whether the order changed after change number `seen`, waiting until it did or the watch was woken.

        No timer per stream: `LiveOrders` wakes every watch once a keep-alive interval.
        """
        if self.generation == seen:
            await self._changed.wait()
        return self.generation != seen

    def drawn_now(self, variant: Hashable, draw: Callable[[], Drawing]) -> Drawing:
        """`draw()`'s fragment since the last change, drawn at once by the first stream of `variant` to ask."""
        drawing = self._drawn.get(variant)
        if not isinstance(drawing, tuple):
            drawing = self._drawn[variant] = draw()
        return drawing

    async def drawn(self, variant: Hashable, render: Callable[[], Awaitable[Drawing]]) -> Drawing:
        """`render()`'s fragment since the last change, drawn once for every stream that shows the same `variant`."""
        drawing = self._drawn.get(variant)
        if isinstance(drawing, tuple):
            return drawing
        if drawing is None:
            drawing = self._drawn[variant] = asyncio.ensure_future(render())
            drawing.add_done_callback(lambda done: self._forget_failed(variant, done))
        return await asyncio.shield(drawing)  # a viewer leaving does not cancel the others' fragment

    def _forget_failed(self, variant: Hashable, drawing: "asyncio.Future[Drawing]") -> None:
        if (drawing.cancelled() or drawing.exception() is not None) and self._drawn.get(variant) is drawing:
            del self._drawn[variant]


class SessionEnd:
    """Whether a stream's session was announced over (a flag: an `asyncio.Event` would cost 0.6 KiB a stream)."""

    __slots__ = ("over",)

    def __init__(self) -> None:
        self.over = False


class LiveOrders:
    """This instance's watched orders: one channel subscription per order, shared by every stream open on it."""

    def __init__(self, channels: ChannelsPlugin) -> None:
        self.channels = channels
        self._watches: dict[int, OrderWatch] = {}
        self._sessions: dict[str, set[tuple[SessionEnd, OrderWatch]]] = {}
        """The streams open on this instance per session tag: woken, and ended, when it is announced over."""
        self._endings: asyncio.Task[None] | None = None
        self._leaving: dict[int, asyncio.Future[None]] = {}
        """Orders whose last watch is leaving its channel: a new watch subscribes once that is done."""
        self._ticking: asyncio.Task[None] | None = None
        self.draining = False

    def drain(self) -> None:
        """This instance is stopping: every stream ends now, asking its page to reconnect (to another instance)."""
        self.draining = True
        for watch in self._watches.values():
            watch.wake()

    @contextlib.asynccontextmanager
    async def session_end(self, tag: str | None, watch: OrderWatch) -> AsyncIterator["SessionEnd"]:
        """Marked over (and `watch` woken) once the session `tag` is announced over, on any instance."""
        ended = SessionEnd()
        if tag is None:
            yield ended
            return
        if self._endings is None:  # one subscription per instance, whatever the number of sessions
            self._endings = asyncio.create_task(self._hear_endings())
        entry = (ended, watch)
        self._sessions.setdefault(tag, set()).add(entry)
        try:
            yield ended
        finally:
            streams = self._sessions.get(tag, set())
            streams.discard(entry)
            if not streams:
                self._sessions.pop(tag, None)

    async def _hear_endings(self) -> None:
        subscriber = await self.channels.subscribe([SESSIONS_ENDED])
        async for message in subscriber.iter_events():
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                tag = json.loads(message)["session"]
                for ended, watch in self._sessions.pop(tag, ()):
                    ended.over = True
                    watch.wake()

    async def _tick(self) -> None:
        """Wake every watched order once a keep-alive interval, a slice of them at a time (not all at once).

        One task per instance instead of a timer per stream's wait (a timer per wait was ~12 % of a relaying
        instance's CPU per update, docs/PERFORMANCE.md). Woken without a change, a stream sends a keep-alive and
        asks whether its session still stands: those checks, too, come a slice at a time. Ends with the last watch.
        """
        turn = 0
        while self._watches:
            await asyncio.sleep(KEEP_ALIVE_SECONDS / TICK_SLICES)
            turn = (turn + 1) % TICK_SLICES
            for order_id, watch in list(self._watches.items()):
                if order_id % TICK_SLICES == turn:
                    watch.tick()

    @contextlib.asynccontextmanager
    async def watch(self, order_id: int) -> AsyncIterator[OrderWatch]:
        watch = self._watches.get(order_id)
        if watch is None:
            subscription = asyncio.ensure_future(self._subscribe(order_id, self._leaving.get(order_id)))
            watch = self._watches[order_id] = OrderWatch(subscription)
            if self._ticking is None or self._ticking.done():
                self._ticking = asyncio.create_task(self._tick())
        watch.viewers += 1
        try:
            subscriber = await asyncio.shield(watch.subscription)
            if watch.reader is None:
                watch.reader = asyncio.create_task(_hear(subscriber, watch))
            yield watch
        finally:
            watch.viewers -= 1
            if not watch.viewers:
                await self._unwatch(order_id, watch)

    async def _subscribe(self, order_id: int, leaving: "asyncio.Future[None] | None") -> Subscriber:
        """The order's channel, once the last watch of it is gone from the channel (if one is going).

        Litestar decides that a channel has no subscriber left before it asks the backend to stop listening; a new
        subscription in between (while PostgreSQL runs the UNLISTEN) would be dropped with it, and its page would
        hear nothing.
        """
        if leaving is not None:
            await asyncio.wait([leaving])
        return await self.channels.subscribe([order_channel(order_id)])

    async def _unwatch(self, order_id: int, watch: OrderWatch) -> None:
        if self._watches.get(order_id) is watch:
            del self._watches[order_id]
        if watch.reader is not None:
            watch.reader.cancel()
        # Shielded: the last viewer usually leaves by disconnecting (a cancellation), maybe before the
        # subscription was made; neither may leave the channel listened to for nobody.
        leaving = self._leaving[order_id] = asyncio.ensure_future(self._leave(watch))
        leaving.add_done_callback(lambda left: self._forget_leaving(order_id, left))
        await asyncio.shield(leaving)

    def _forget_leaving(self, order_id: int, left: "asyncio.Future[None]") -> None:
        if self._leaving.get(order_id) is left:
            del self._leaving[order_id]

    async def _leave(self, watch: OrderWatch) -> None:
        try:
            subscriber = await watch.subscription
        except Exception:
            return  # it never subscribed: nothing to undo
        await self.channels.unsubscribe(subscriber)

    def watched(self) -> int:
        return len(self._watches)


async def _hear(subscriber: Subscriber, watch: OrderWatch) -> None:
    async for message in subscriber.iter_events():
        watch.changed(card_of(message))


def change_stream(
    live: LiveOrders,
    order_id: int,
    render: Render,
    *,
    draw: Draw | None = None,
    event: str,
    variant: Hashable,
    alive: Callable[[], Awaitable[bool]],
    session: str | None,
) -> Stream:
    """An SSE response: `render`'s fragment now and after every change of the order, until it says it is done.

    `render` returns (html, done); the stream then sends the event `done` so the page stops listening. It is given
    the status card the change brought (None at the start: it reads the order). With `draw`, a change that brought
    its card is drawn from the card at once instead (no task and no wait per stream). After a change, streams of
    this instance whose `variant` is equal share one drawing and its encoded message (the variant must name
    everything the fragment depends on besides the order: template, language, flow, viewer).
    A stream must not outlive the right to see it: it ends at once when its `session` (a tag,
    `sessions.session_tag`) is announced signed out on any instance, and within a keep-alive interval once
    `alive()` says the session is over otherwise (expired). `alive()` is asked at every keep-alive interval's tick
    and, on a busy order, at a change once an interval has passed since it was last asked. When the instance is stopping
    (`LiveOrders.drain`) it ends without `done`, so the page reconnects, through the proxy, to an instance that is not.
    """

    def encoded(html: str, done: bool) -> Drawing:
        return ServerSentEventMessage(data=html, event=event).encode(), done

    async def message(card: StatusCard | None) -> Drawing:
        return encoded(*await render(card))

    def drawing(card: StatusCard | None) -> Callable[[], Drawing] | None:
        return None if card is None or draw is None else lambda: encoded(*draw(card))

    async def stream() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        with SSE_STREAMS.track_inprogress():
            async with live.watch(order_id) as watch, live.session_end(session, watch) as ended:
                seen, ticks = watch.generation, watch.ticks
                opening, done = await message(None)  # drawn for this viewer alone: the page opens on the current state
                yield opening
                del opening  # this viewer's own bytes, not kept for the life of the stream (memory per watcher)
                checked = loop.time()
                while not done and not ended.over and not live.draining:
                    changed = await watch.changed_since(seen)
                    if ended.over or live.draining:
                        break
                    ticked, ticks = watch.ticks != ticks, watch.ticks
                    if ticked or loop.time() - checked >= KEEP_ALIVE_SECONDS:
                        if not await alive():
                            break
                        checked = loop.time()
                    if not changed:
                        yield KEEP_ALIVE
                        continue
                    seen, card = watch.generation, watch.card
                    at_once = drawing(card)
                    if at_once is not None:
                        body, done = watch.drawn_now(variant, at_once)
                    else:
                        body, done = await watch.drawn(variant, functools.partial(message, card))
                    yield body
            yield RECONNECT if live.draining and not (done or ended.over) else DONE

    return HandedOffStream(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


KEEP_ALIVE = ServerSentEventMessage(comment="keep-alive").encode()
DONE = ServerSentEventMessage(data="", event="done").encode()
RECONNECT_MILLISECONDS = 250
RECONNECT = ServerSentEventMessage(
    data=None, comment="this instance is stopping", retry=RECONNECT_MILLISECONDS
).encode()
"""The last message of a stream cut by `LiveOrders.drain`: no `done`, so the page reconnects, after this pause."""
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
"""A live stream is never cached, nor held back by a buffering proxy."""
