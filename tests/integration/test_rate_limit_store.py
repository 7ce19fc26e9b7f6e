"""The rate limits' counter store: no write per hit, exact on one instance, shared within the stated two seconds."""

import asyncio
import json
import time

import pytest
from sqlalchemy import func, insert, select

from tests.conftest import create_schema
from tests.integration.conftest import both_databases
from webapp.db import make_engine
from webapp.ratelimit_store import FRESH_SECONDS, WINDOW_SECONDS, RateLimitWindow, SharedCounterStore

TABLE = RateLimitWindow.__table__  # type: ignore[attr-defined]


pytestmark = pytest.mark.usefixtures("not_at_the_end_of_a_minute")


async def shared_count(store: SharedCounterStore, key: str) -> int:
    async with store._engine.connect() as connection:
        return int(
            (
                await connection.execute(select(func.coalesce(func.sum(TABLE.c.count), 0)).where(TABLE.c.key == key))
            ).scalar_one()
        )


@both_databases
async def test_hits_are_counted_exactly_on_one_instance_and_written_once_a_flush(database_url: str) -> None:
    await create_schema(database_url)
    engine = make_engine(database_url)
    store = SharedCounterStore(engine)
    try:
        assert await store.get("rl:orders:user:1") is None
        for _ in range(5):
            await store.set("rl:orders:user:1", b"ignored")
        assert await shared_count(store, "rl:orders:user:1") == 0  # nothing written per hit
        assert await store.count("rl:orders:user:1") == 5
        assert await store.flush() == 1  # one row for the key and minute
        assert await shared_count(store, "rl:orders:user:1") == 5
        assert await store.count("rl:orders:user:1") == 5  # not counted twice after the flush
        await store.set("rl:orders:user:1", b"")
        assert await store.flush() == 1 and await shared_count(store, "rl:orders:user:1") == 6  # added, not replaced
        assert await store.flush() == 0  # nothing new: no statement
    finally:
        await engine.dispose()


@both_databases
async def test_two_instances_add_to_one_count_and_see_each_other_within_two_seconds(database_url: str) -> None:
    await create_schema(database_url)
    engines = [make_engine(database_url) for _ in range(2)]
    a, b = (SharedCounterStore(engine) for engine in engines)
    try:
        assert await b.count("rl:ipn:address:x") == 0  # b has read the count
        for _ in range(4):
            await a.set("rl:ipn:address:x", b"")
        for _ in range(5):
            await b.set("rl:ipn:address:x", b"")
        await asyncio.gather(a.flush(), b.flush())  # both at once: an atomic add, nothing overwritten
        assert await shared_count(a, "rl:ipn:address:x") == 9
        assert await b.count("rl:ipn:address:x") == 5  # a's hits are not seen until b's reading is renewed
        await asyncio.sleep(FRESH_SECONDS + 0.1)
        assert await b.count("rl:ipn:address:x") == 9
        page = await b.get("rl:ipn:address:x")
        assert page is not None and len(json.loads(page)["history"]) == 9  # what the middleware reads: one per hit
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_flush_that_fails_keeps_its_hits_for_the_next_round(database_url: str) -> None:
    engine = make_engine(database_url)  # no schema: the write fails
    store = SharedCounterStore(engine)
    try:
        store._shared["k"] = (int(time.time()) // WINDOW_SECONDS, 0, time.monotonic())  # read a moment ago
        await store.set("k", b"")
        with pytest.raises(Exception, match="rate_limit_window"):
            await store.flush()
        assert await store.count("k") == 1
        await create_schema(database_url)
        assert await store.flush() == 1 and await shared_count(store, "k") == 1
    finally:
        await engine.dispose()


async def test_minutes_that_are_over_are_cleaned_up(database_url: str) -> None:
    await create_schema(database_url)
    engine = make_engine(database_url)
    store = SharedCounterStore(engine)
    now = int(time.time()) // WINDOW_SECONDS
    try:
        async with engine.begin() as connection:
            rows = [{"key": "k", "minute": minute, "count": 1} for minute in (now - 5, now - 2, now - 1, now)]
            await connection.execute(insert(TABLE), rows)
        assert await store.delete_expired() == 2
        assert await shared_count(store, "k") == 2  # the last minute and this one stay
    finally:
        await engine.dispose()
