"""The database session store: expiry, renewal, and clean-up of expired rows."""

import asyncio

import pytest
from sqlmodel import select

from tests.conftest import create_schema
from tests.integration.conftest import LiveApp
from tests.integration.flow import Db, review, signed_in_client
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


async def test_a_signed_in_request_that_changes_nothing_writes_no_session_row(
    live_app: LiveApp, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await signed_in_client(live_app)
    writes: list[str] = []
    original_set = DatabaseStore.set

    async def counting_set(self: DatabaseStore, key: str, value: str | bytes, expires_in: object = None) -> None:
        writes.append(key)
        await original_set(self, key, value, expires_in)  # type: ignore[arg-type]

    monkeypatch.setattr(DatabaseStore, "set", counting_set)
    async with db.sessionmaker() as session:
        before = (await session.exec(select(HttpSession.expires_at))).all()
    for path in ("/", "/orders/new", "/orders/"):
        answer = await person.get(path)
        assert answer.status_code == 200 and "session=" in answer.headers["set-cookie"]  # the cookie still slides
    async with db.sessionmaker() as session:
        after = (await session.exec(select(HttpSession.expires_at))).all()
    assert writes == [] and after == before  # no save, no renewal: half the idle period is not used up
    assert (await review(person)).status_code == 200  # the review goes into the session: one write
    assert len(writes) == 1
