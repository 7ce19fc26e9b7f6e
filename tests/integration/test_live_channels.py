"""Live updates on PostgreSQL LISTEN/NOTIFY survive the loss of their connections (a restart, a network cut)."""

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest
from litestar.channels import ChannelsPlugin

from tests.integration.conftest import POSTGRES_ADMIN_DSN
from webapp.orders.live import LiveOrders, OrderWatch, PatientPgChannelsBackend, make_channels, publish_change

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def channels() -> AsyncIterator[ChannelsPlugin]:
    plugin = make_channels(POSTGRES_ADMIN_DSN.replace("postgresql://", "postgresql+asyncpg://", 1))
    async with plugin:
        yield plugin


async def cut(connection: asyncpg.Connection) -> None:
    """What a PostgreSQL restart does to one connection: the server ends it."""
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", connection.get_server_pid())
    finally:
        await admin.close()


@asynccontextmanager
async def watching(channels: ChannelsPlugin) -> AsyncIterator[tuple[PatientPgChannelsBackend, OrderWatch, int]]:
    """The backend, and a watch of a new order that has heard its first change (generation 1)."""
    backend = channels._backend
    assert isinstance(backend, PatientPgChannelsBackend)
    order_id = secrets.randbelow(10**9)
    async with LiveOrders(channels).watch(order_id) as watch:
        publish_change(channels, order_id)
        assert await asyncio.wait_for(watch.changed_since(0), 10)
        yield backend, watch, order_id


async def test_a_lost_listening_connection_is_made_again_and_its_watchers_look_again(
    channels: ChannelsPlugin,
) -> None:
    async with watching(channels) as (backend, watch, order_id):
        lost = backend._listener_conn
        await cut(lost)
        # Whatever was said while nobody listened is lost: the watchers are told to look again.
        assert await asyncio.wait_for(watch.changed_since(1), 10) and watch.generation == 2
        assert backend._listener_conn is not lost and not backend._listener_conn.is_closed()
        publish_change(channels, order_id)  # and changes are heard again on the new connection
        assert await asyncio.wait_for(watch.changed_since(2), 10) and watch.generation == 3


class LostMidStatement:
    """The publishing connection as it is when PostgreSQL goes away during a NOTIFY: not yet known to be closed."""

    def __init__(self, real: asyncpg.Connection) -> None:
        self.real = real

    def is_closed(self) -> bool:
        return False

    def terminate(self) -> None:
        self.real.terminate()

    async def execute(self, *_: object) -> str:
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


async def test_a_publishing_connection_lost_mid_statement_is_made_again(channels: ChannelsPlugin) -> None:
    async with watching(channels) as (backend, watch, order_id):
        assert backend._publisher is not None
        await cut(backend._publisher)
        backend._publisher = LostMidStatement(backend._publisher)  # type: ignore[assignment]
        for seen in (1, 2):  # sent again on a new connection; Litestar's publishing task lives on
            publish_change(channels, order_id)
            assert await asyncio.wait_for(watch.changed_since(seen), 10) and watch.generation == seen + 1


class CountedStatements:
    """The publishing connection, counting the statements sent on it."""

    def __init__(self, real: asyncpg.Connection) -> None:
        self.real = real
        self.statements = 0

    def is_closed(self) -> bool:
        return self.real.is_closed()

    def terminate(self) -> None:
        self.real.terminate()

    async def close(self) -> None:
        await self.real.close()

    async def execute(self, *args: object) -> str:
        self.statements += 1
        return await self.real.execute(*args)


@asynccontextmanager
async def heard(channel_names: list[str]) -> AsyncIterator[list[tuple[str, str]]]:
    """What another connection hears on these channels while inside, in the order it arrives."""
    listener = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    received: list[tuple[str, str]] = []
    try:
        for name in channel_names:
            await listener.add_listener(name, lambda _conn, _pid, channel, payload: received.append((channel, payload)))
        yield received
    finally:
        await listener.close()


async def test_notifications_handed_over_together_go_out_in_one_statement_in_their_order(
    channels: ChannelsPlugin,
) -> None:
    async with watching(channels) as (backend, _watch, _order_id):
        counted = CountedStatements(backend._publisher)  # type: ignore[arg-type]
        backend._publisher = counted  # type: ignore[assignment]
        names = [f"order:{secrets.randbelow(10**9)}" for _ in range(20)]
        async with heard(names) as received:
            for number, name in enumerate(names):  # as the live publisher sends the cards of one read
                channels.publish(f"card {number}".encode(), [name])
            await wait_until(lambda: len(received) == len(names))
        assert received == [(name, f"card {number}") for number, name in enumerate(names)]
        assert counted.statements == 1


async def test_what_was_handed_over_last_is_sent_before_the_backend_stops() -> None:
    plugin = make_channels(POSTGRES_ADMIN_DSN.replace("postgresql://", "postgresql+asyncpg://", 1))
    name = f"order:{secrets.randbelow(10**9)}"
    async with heard([name]) as received:
        async with plugin:
            plugin.publish(b"last words", [name])
        await wait_until(lambda: received == [(name, "last words")])


async def wait_until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)
