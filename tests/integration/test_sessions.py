"""The database session store: expiry, renewal, and clean-up of expired rows."""

import asyncio

from sqlmodel import select

from tests.conftest import create_schema
from webapp.config import Settings
from webapp.db import make_engine, make_sessionmaker
from webapp.sessions import DatabaseStore, HttpSession


async def test_store_round_trip_expiry_and_clean_up(settings: Settings) -> None:
    await create_schema(settings.database.url)
    engine = make_engine(settings.database.url)
    sessionmaker = make_sessionmaker(engine)
    store = DatabaseStore(sessionmaker)
    await store.set("a", b"alpha", expires_in=60)
    await store.set("b", "beta", expires_in=1)
    await store.set("c", b"gamma")
    assert await store.get("a") == b"alpha"
    assert 55 <= (await store.expires_in("a") or 0) <= 60
    assert await store.expires_in("c") is None
    await store.set("a", b"alpha2", expires_in=60)
    assert await store.get("a", renew_for=3600) == b"alpha2"
    assert (await store.expires_in("a") or 0) > 3000
    await asyncio.sleep(1.1)
    await store.delete_expired()
    async with sessionmaker() as session:
        keys = {row.key for row in (await session.exec(select(HttpSession))).all()}
    assert keys == {"a", "c"}
    assert await store.get("b") is None and not await store.exists("b")
    await store.delete("a")
    assert not await store.exists("a")
    await store.delete_all()
    assert not await store.exists("c")
    await engine.dispose()
