"""Live order streams on one instance: one channel subscription per order, one drawing per change and variant."""

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from datetime import UTC, datetime, timedelta

import pytest
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.channels.backends.memory import MemoryChannelsBackend

from webapp.orders import live as live_module
from webapp.orders.live import (
    DONE,
    KEEP_ALIVE,
    MAX_CARD_BYTES,
    LiveOrders,
    LivePublisher,
    OrderWatch,
    card_of,
    change_stream,
    order_channel,
    publish_change,
)
from webapp.orders.status_card import StatusCard
from webapp.sessions import announce_session_end

pytestmark = pytest.mark.timeout(20)


class CountingBackend(MemoryChannelsBackend):
    """The memory backend, counting what it is asked to (un)subscribe."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed: list[str] = []
        self.unsubscribed: list[str] = []

    async def subscribe(self, channels: Iterable[str]) -> None:
        self.subscribed.extend(channels)
        await super().subscribe(channels)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        self.unsubscribed.extend(channels)
        await super().unsubscribe(channels)


@pytest.fixture
async def channels() -> AsyncIterator[ChannelsPlugin]:
    plugin = ChannelsPlugin(backend=CountingBackend(), arbitrary_channels_allowed=True)
    async with plugin:
        yield plugin


def counting(results: Callable[[int], tuple[str, bool]]) -> tuple[list[int], Callable[[], Awaitable[tuple[str, bool]]]]:
    calls: list[int] = []

    async def render() -> tuple[str, bool]:
        calls.append(call := len(calls) + 1)
        await asyncio.sleep(0.01)  # a drawing takes time: the other viewers arrive while it is under way
        return results(call)

    return calls, render


async def changed(watch: OrderWatch, seen: int) -> None:
    assert await asyncio.wait_for(watch.changed_since(seen), 5)


async def test_streams_of_one_order_share_one_subscription(channels: ChannelsPlugin) -> None:
    live = LiveOrders(channels)
    backend: CountingBackend = channels._backend  # type: ignore[assignment]
    async with live.watch(7) as first, live.watch(7) as second, live.watch(8):
        assert first is second and live.watched() == 2
        assert sorted(backend.subscribed) == [order_channel(7), order_channel(8)]
        publish_change(channels, 7)
        await changed(first, 0)
        assert first.generation == 1
    assert live.watched() == 0
    assert sorted(backend.unsubscribed) == [order_channel(7), order_channel(8)]
    async with live.watch(7) as again:  # watched anew: a new subscription, counting from nothing
        assert again is not first and again.generation == 0
    assert backend.subscribed.count(order_channel(7)) == 2


async def test_a_viewer_gone_before_the_subscription_was_made_leaves_no_channel_listened_to(
    channels: ChannelsPlugin,
) -> None:
    backend: CountingBackend = channels._backend  # type: ignore[assignment]
    gate = asyncio.Event()
    subscribe = backend.subscribe

    async def slow_subscribe(names: Iterable[str]) -> None:
        await gate.wait()  # the database is slow to answer LISTEN
        await subscribe(names)

    backend.subscribe = slow_subscribe  # type: ignore[method-assign]
    live = LiveOrders(channels)

    async def view() -> None:
        async with live.watch(3):
            await asyncio.sleep(60)

    viewer = asyncio.create_task(view())
    await asyncio.sleep(0.01)
    viewer.cancel()  # the browser went away while we were subscribing
    await asyncio.sleep(0.01)
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await viewer
    assert live.watched() == 0
    assert backend.subscribed == backend.unsubscribed == [order_channel(3)]


async def test_a_change_is_drawn_once_for_each_variant(channels: ChannelsPlugin) -> None:
    live = LiveOrders(channels)
    calls, render = counting(lambda call: (f"drawing {call}", False))
    async with live.watch(1) as watch:
        publish_change(channels, 1)
        await changed(watch, 0)
        drawings = await asyncio.gather(
            *(watch.drawn(variant, render) for variant in ("en", "en", "vi", "en", "vi")), return_exceptions=False
        )
        assert len(calls) == 2  # one per language, not one per viewer
        assert drawings.count(drawings[0]) == 3 and drawings[2] == drawings[4] != drawings[0]
        assert await watch.drawn("en", render) == drawings[0]  # a late viewer of the same change: no new drawing
        assert len(calls) == 2
        publish_change(channels, 1)
        await changed(watch, 1)
        await watch.drawn("en", render)  # the next change is drawn anew
        assert len(calls) == 3


async def test_a_change_during_a_drawing_is_drawn_again(channels: ChannelsPlugin) -> None:
    live = LiveOrders(channels)
    gate = asyncio.Event()
    calls: list[str] = []

    async def render() -> tuple[str, bool]:
        calls.append("drawn")
        call = len(calls)
        if call == 1:
            await gate.wait()  # the first drawing is slow: a change arrives meanwhile
        return f"drawing {call}", False

    async with live.watch(1) as watch:
        publish_change(channels, 1)
        await changed(watch, 0)
        slow = asyncio.ensure_future(watch.drawn("en", render))
        await asyncio.sleep(0.01)
        publish_change(channels, 1)
        await changed(watch, 1)
        assert await watch.drawn("en", render) == ("drawing 2", False)  # not the drawing begun before the change
        gate.set()
        assert await slow == ("drawing 1", False)


async def test_a_failed_drawing_is_not_kept(channels: ChannelsPlugin) -> None:
    live = LiveOrders(channels)
    outcomes: list[BaseException | tuple[str, bool]] = [RuntimeError("database away"), ("drawn", False)]

    async def render() -> tuple[str, bool]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async with live.watch(1) as watch:
        with pytest.raises(RuntimeError):
            await watch.drawn("en", render)
        assert await watch.drawn("en", render) == ("drawn", False)


async def test_a_viewer_leaving_does_not_cancel_the_others_drawing(channels: ChannelsPlugin) -> None:
    live = LiveOrders(channels)
    calls, render = counting(lambda call: (f"drawing {call}", False))
    async with live.watch(1) as watch:
        leaving = asyncio.ensure_future(watch.drawn("en", render))
        staying = asyncio.ensure_future(watch.drawn("en", render))
        await asyncio.sleep(0)
        leaving.cancel()
        assert await staying == ("drawing 1", False) and len(calls) == 1


async def test_streams_on_one_instance_share_the_drawing_of_a_change(channels: ChannelsPlugin) -> None:
    """Three streams of one order, two alike and one in another language: after a change, two drawings."""
    live = LiveOrders(channels)
    calls: list[str] = []

    def stream_of(language: str) -> Callable[[object], Awaitable[tuple[str, bool]]]:
        async def render(_card: object) -> tuple[str, bool]:
            calls.append(language)
            await asyncio.sleep(0.01)
            return f"{language} {len(calls)}", len(calls) > 3  # the opening drawings (3) go on; the change ends

        return render

    async def alive() -> bool:
        return True

    async def body(language: str) -> str:
        response = change_stream(
            live, 1, stream_of(language), event="status", variant=language, alive=alive, session=None
        )
        return "".join([chunk.decode() async for chunk in response.iterator])  # type: ignore[union-attr]

    async def change_once_all_opened() -> None:
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        publish_change(channels, 1)

    *bodies, _ = await asyncio.gather(body("en"), body("en"), body("vi"), change_once_all_opened())
    assert sorted(calls[3:]) == ["en", "vi"]  # three streams, one change: two drawings, not three
    assert all(body.count("event: status") == 2 and body.endswith("event: done\r\ndata: \r\n\r\n") for body in bodies)
    assert bodies[0] == bodies[1]
    assert live.watched() == 0


async def test_a_stream_ends_at_once_when_its_session_is_announced_over(channels: ChannelsPlugin) -> None:
    """Signed out on any instance: that session's streams end now, not at the next keep-alive; others go on."""
    live = LiveOrders(channels)
    asked: list[str] = []

    async def render(_card: object) -> tuple[str, bool]:
        return "the status", False

    async def alive() -> bool:
        asked.append("alive")
        return True

    def stream(tag: str) -> AsyncIterator[bytes]:
        return change_stream(live, 1, render, event="status", variant=tag, alive=alive, session=tag).iterator  # type: ignore[return-value]

    mine, theirs = stream("mine"), stream("theirs")
    assert b"event: status" in await anext(mine) and b"event: status" in await anext(theirs)
    rest, next_of_theirs = asyncio.ensure_future(collect(mine)), asyncio.ensure_future(anext(theirs))
    await asyncio.sleep(0.05)  # both wait for a change; the instance's subscription to announcements is made
    announce_session_end(channels, "mine")
    assert await asyncio.wait_for(rest, 1) == [DONE]
    assert await asyncio.wait_for(next_of_theirs, 1) == KEEP_ALIVE  # woken, still open
    assert asked == []  # no store read was needed to end it
    await theirs.aclose()  # type: ignore[attr-defined]
    assert live.watched() == 0


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


class SlowToStopListening(CountingBackend):
    """PostgreSQL's UNLISTEN takes a round trip: Litestar has already decided the channel is unwanted meanwhile."""

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        await asyncio.sleep(0.05)
        await super().unsubscribe(channels)


async def test_a_page_opened_while_the_last_one_leaves_still_hears_the_next_change() -> None:
    plugin = ChannelsPlugin(backend=SlowToStopListening(), arbitrary_channels_allowed=True)
    async with plugin:
        live = LiveOrders(plugin)

        async def glance() -> None:
            async with live.watch(7):
                await asyncio.sleep(0.01)

        customer = asyncio.create_task(glance())
        await asyncio.sleep(0.03)  # the customer closed the page: its watch is leaving the channel...
        async with live.watch(7) as watch:  # ...as support opens the order
            await customer
            publish_change(plugin, 7)
            await changed(watch, 0)


def card(status: str = "AWAITING_PAYMENT", *, changes: int = 1, rejection: str | None = None) -> StatusCard:
    at = datetime(2026, 12, 5, 8, 30, tzinfo=UTC)
    return StatusCard(
        external_order_id="0f3c9e2a-order",
        status=status,
        fiat_amount=2_500_000,
        rejection_message=rejection,
        expires_at=at + timedelta(minutes=30),
        reached=tuple(("AWAITING_PAYMENT", at + timedelta(seconds=step)) for step in range(changes)),
        flagged=(at,),
    )


async def test_a_change_brings_its_status_card_to_the_drawing_and_an_older_card_is_ignored(
    channels: ChannelsPlugin,
) -> None:
    live = LiveOrders(channels)
    async with live.watch(1) as watch:
        publish_change(channels, 1, card("PAYMENT_COMPLETED", changes=2))
        await changed(watch, 0)
        assert watch.card == card("PAYMENT_COMPLETED", changes=2)  # what the instance that changed it read
        publish_change(channels, 1, card(changes=1))  # published by another instance before it, heard after
        publish_change(channels, 1)  # a signal alone: the drawing reads the order
        await changed(watch, 1)
        assert watch.generation == 2 and watch.card is None


async def test_a_stream_draws_a_change_from_the_card_it_brought(channels: ChannelsPlugin) -> None:
    live = LiveOrders(channels)
    given: list[StatusCard | None] = []

    async def render(shown: StatusCard | None) -> tuple[str, bool]:
        given.append(shown)
        return "drawn", shown is not None

    async def alive() -> bool:
        return True

    stream = change_stream(live, 1, render, event="status", variant="en", alive=alive, session=None).iterator
    assert b"event: status" in await anext(stream)  # type: ignore[call-overload]
    publish_change(channels, 1, card("SUCCESS", changes=3))
    assert await asyncio.wait_for(collect(stream), 5)  # type: ignore[arg-type]
    assert given == [None, card("SUCCESS", changes=3)]


def test_a_card_too_long_for_a_notification_goes_as_a_signal() -> None:
    sent: list[bytes] = []

    class Recording:
        def publish(self, data: bytes, channels: list[str]) -> None:
            sent.append(data)

    for rejection in ("Tài khoản không hợp lệ", "x" * MAX_CARD_BYTES):
        publish_change(Recording(), 9, card(rejection=rejection))  # type: ignore[arg-type]
    assert card_of(sent[0]) == card(rejection="Tài khoản không hợp lệ")
    assert card_of(sent[1]) is None and json.loads(sent[1]) == {"order": 9}
    assert all(len(message) <= MAX_CARD_BYTES for message in sent)


async def test_the_publisher_reads_the_cards_of_all_changes_since_its_last_read_at_once(
    channels: ChannelsPlugin,
) -> None:
    reads: list[list[int]] = []
    gate = asyncio.Event()

    async def read_cards(order_ids: Collection[int]) -> dict[int, StatusCard]:
        reads.append(sorted(order_ids))
        await gate.wait()
        if 3 in order_ids:
            raise OSError("the database went away")
        return {order_id: card(changes=order_id) for order_id in order_ids if order_id != 2}

    publisher = LivePublisher(channels, read_cards)
    heard = {order_id: await channels.subscribe([order_channel(order_id)]) for order_id in (1, 2, 3)}
    async with publisher.running():
        publisher({1})
        await asyncio.sleep(0.01)  # the first read is under way: the next commits wait for it, together
        publisher({2})
        publisher({1, 2})
        gate.set()
        await asyncio.sleep(0.05)
        publisher({3})
        await asyncio.sleep(0.05)
    assert reads == [[1], [1, 2], [3]]
    got = {order_id: await drain(heard[order_id]) for order_id in (1, 2, 3)}
    assert got == {1: [card(changes=1), card(changes=1)], 2: [None], 3: [None]}  # 2 unread, 3's read failed


async def drain(subscriber: Subscriber) -> list[StatusCard | None]:
    """The cards of the messages the subscriber has heard (None for a signal)."""
    found, messages = [], subscriber.iter_events()
    while True:
        try:
            message = await asyncio.wait_for(anext(messages), 0.2)
        except TimeoutError:
            return found
        found.append(card_of(message))


async def test_a_change_that_brought_its_card_is_drawn_at_once_once_per_variant(channels: ChannelsPlugin) -> None:
    """Three streams of one order, two alike and one in another language: one drawing per language, no reading."""
    live = LiveOrders(channels)
    drawn: list[str] = []

    async def read(_card: object) -> tuple[str, bool]:
        return "opened", False

    def draw_in(language: str) -> Callable[[StatusCard], tuple[str, bool]]:
        def draw(shown: StatusCard) -> tuple[str, bool]:
            drawn.append(language)
            return f"{language} {shown.status}", True

        return draw

    async def alive() -> bool:
        return True

    async def body(language: str) -> str:
        response = change_stream(
            live, 1, read, draw=draw_in(language), event="status", variant=language, alive=alive, session=None
        )
        return "".join([chunk.decode() async for chunk in response.iterator])  # type: ignore[union-attr]

    streams = [asyncio.ensure_future(body(language)) for language in ("en", "en", "vi")]
    await asyncio.sleep(0.05)  # all three opened and waiting
    publish_change(channels, 1, card("SUCCESS", changes=3))
    bodies = await asyncio.wait_for(asyncio.gather(*streams), 5)
    assert sorted(drawn) == ["en", "vi"]
    assert bodies[0] == bodies[1] and "data: en SUCCESS" in bodies[0] and "data: vi SUCCESS" in bodies[2]
    assert all(body.endswith("event: done\r\ndata: \r\n\r\n") for body in bodies)


async def test_a_quiet_stream_gets_a_keep_alive_and_a_session_check_each_interval_from_one_ticker(
    channels: ChannelsPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_module, "KEEP_ALIVE_SECONDS", 0.15)
    live = LiveOrders(channels)
    asked: list[int] = []

    async def read(_card: object) -> tuple[str, bool]:
        return "the status", False

    async def alive() -> bool:
        asked.append(1)
        return len(asked) < 3  # the session ends after two checks

    stream = change_stream(live, 7, read, event="status", variant="en", alive=alive, session=None).iterator
    chunks = await asyncio.wait_for(collect(stream), 5)  # type: ignore[arg-type]
    assert chunks[1:] == [KEEP_ALIVE, KEEP_ALIVE, DONE]  # two intervals kept alive, ended at the third check
    assert len(asked) == 3
    await asyncio.sleep(0.02)
    assert live._ticking is not None and live._ticking.done()  # no ticker left once nothing is watched


async def test_a_page_opened_just_as_the_last_one_left_still_gets_its_keep_alive(
    channels: ChannelsPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_module, "KEEP_ALIVE_SECONDS", 0.15)
    live = LiveOrders(channels)

    async def read(_card: object) -> tuple[str, bool]:
        return "the status", False

    async def alive() -> bool:
        return True

    first = change_stream(live, 7, read, event="status", variant="en", alive=alive, session=None).iterator
    await anext(first)  # type: ignore[call-overload]
    closing = asyncio.ensure_future(first.aclose())  # type: ignore[attr-defined]
    await asyncio.sleep(0)  # the last watch has left; the next page opens before anything else has run
    second = change_stream(live, 8, read, event="status", variant="en", alive=alive, session=None).iterator
    await anext(second)  # type: ignore[call-overload]
    await closing
    assert await asyncio.wait_for(anext(second), 2) == KEEP_ALIVE  # type: ignore[call-overload]
    await second.aclose()  # type: ignore[attr-defined]


async def test_a_stream_waiting_for_a_change_does_not_keep_the_opening_it_sent(channels: ChannelsPlugin) -> None:
    """Each viewer's opening drawing is theirs alone: kept for the stream's life, it would be memory per watcher."""
    live = LiveOrders(channels)
    opening_size, viewers = 200_000, 20

    async def render(_card: object) -> tuple[str, bool]:
        return "x" * opening_size, False

    async def alive() -> bool:
        return True

    streams = [
        change_stream(live, 1, render, event="status", variant="en", alive=alive, session=None).iterator
        for _ in range(viewers)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        waiting = []
        for stream in streams:
            assert len(await anext(stream)) > opening_size  # type: ignore[call-overload]
            waiting.append(asyncio.ensure_future(anext(stream)))  # type: ignore[call-overload]
        await asyncio.sleep(0.05)  # every stream now waits for the order's next change
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < viewers * opening_size / 4
    for future in waiting:
        future.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    for stream in streams:
        await stream.aclose()  # type: ignore[union-attr]
    assert live.watched() == 0
