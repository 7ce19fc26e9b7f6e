"""Live updates on PostgreSQL LISTEN/NOTIFY survive the loss of their connections (a restart, a network cut)."""

import asyncio
import secrets
from collections.abc import AsyncIterator
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
