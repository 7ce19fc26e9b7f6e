"""The database session store: expiry, renewal, and clean-up of expired rows."""

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import delete, select

from tests.builders import make_order
from tests.conftest import create_schema
from tests.integration.conftest import LiveApp, both_databases
from tests.integration.flow import FORM, Db, review, signed_in_client
from tests.processes import serving
from webapp import sessions
from webapp.app import create_app
from webapp.auth.models import User
from webapp.config import SessionSettings
from webapp.db import make_engine, make_sessionmaker
from webapp.dev.stack import free_port
from webapp.orders import live
from webapp.sessions import DatabaseStore, HttpSession


@both_databases
async def test_store_round_trip_expiry_and_clean_up(database_url: str) -> None:
    await create_schema(database_url)
    engine = make_engine(database_url)
    sessionmaker = make_sessionmaker(engine)
    store = DatabaseStore(engine)
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


@both_databases
async def test_whether_a_session_stands_is_read_once_a_second_for_all_who_ask(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every live stream asks at its keep-alive tick: one person's streams share one read."""
    await create_schema(database_url)
    engine = make_engine(database_url)
    store = DatabaseStore(engine)
    await store.set("a", b"alpha", expires_in=60)
    reads: list[str] = []
    read = store.exists

    async def counted(key: str) -> bool:
        reads.append(key)
        return await read(key)

    monkeypatch.setattr(store, "exists", counted)
    clock = [1000.0]
    monkeypatch.setattr(sessions, "monotonic", lambda: clock[0])
    assert await asyncio.gather(*(store.stands("a") for _ in range(50))) == [True] * 50
    assert await store.stands("a") and reads == ["a"]
    await store.delete("a")  # a sign-out on this instance is seen at once
    assert not await store.stands("a") and reads == ["a", "a"]
    await store.set("b", b"beta", expires_in=60)
    assert await store.stands("b")
    await DatabaseStore(engine).delete("b")  # signed out on another instance: seen once the answer is old
    clock[0] += sessions.STANDING_SECONDS * 0.9
    assert await store.stands("b")
    clock[0] += sessions.STANDING_SECONDS * 0.2
    assert not await store.stands("b") and reads == ["a", "a", "b", "b"]

    async def failing(key: str) -> bool:
        raise ConnectionError("database away")

    monkeypatch.setattr(store, "exists", failing)
    clock[0] += sessions.STANDING_SECONDS
    with pytest.raises(ConnectionError):
        await store.stands("b")
    monkeypatch.setattr(store, "exists", counted)
    assert not await store.stands("b") and reads[-1] == "b"  # a failed read is not kept
    await engine.dispose()


async def test_a_signed_in_request_that_changes_nothing_writes_no_session_row(
    live_app: LiveApp, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await signed_in_client(live_app)
    writes: list[str] = []
    original_set = DatabaseStore.set

    async def counting_set(
        self: DatabaseStore, key: str, value: str | bytes, expires_in: object = None, **owner: int | None
    ) -> None:
        if self._rows is HttpSession.__table__:  # rate-limit counters have their own table
            writes.append(key)
        await original_set(self, key, value, expires_in, **owner)  # type: ignore[arg-type]

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


async def open_stream(client: httpx.AsyncClient, db: Db) -> str:
    """An order of the signed-in person that waits for Alix Pay, so its stream stays open."""
    async with db.sessionmaker() as session, session.begin():
        user = (await session.exec(select(User).where(User.email == "user@example.com"))).one()
        order = make_order(user_id=user.id, email=user.email)
        session.add(order)
    return order.external_order_id


async def lines_until(lines: AsyncIterator[str], wanted: str) -> list[str]:
    seen = []
    async for line in lines:
        seen.append(line)
        if line.startswith(wanted):
            return seen
    return seen


async def test_a_live_stream_ends_at_once_when_its_session_is_signed_out(live_app: LiveApp, db: Db) -> None:
    client = await signed_in_client(live_app)
    order_id = await open_stream(client, db)
    async with client.stream("GET", f"/orders/{order_id}/events", timeout=10) as stream:
        lines = stream.aiter_lines()
        assert await anext(lines) == "event: status"
        await asyncio.sleep(0.2)
        out = await client.post("/logout", headers={"x-csrftoken": client.cookies["csrftoken"]})
        assert out.status_code in (200, 303)
        after = await asyncio.wait_for(lines_until(lines, "event: done"), 1)  # not the next keep-alive, 15 s away
        assert after[-1] == "event: done"


async def test_a_live_stream_ends_within_a_keep_alive_once_its_session_is_gone(
    live_app: LiveApp, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expired (or removed) rather than signed out: nobody announces it; the keep-alive's check ends the stream."""
    monkeypatch.setattr(live, "KEEP_ALIVE_SECONDS", 0.3)
    client = await signed_in_client(live_app)
    order_id = await open_stream(client, db)
    async with client.stream("GET", f"/orders/{order_id}/events", timeout=10) as stream:
        lines = stream.aiter_lines()
        assert await anext(lines) == "event: status"
        before = await asyncio.wait_for(lines_until(lines, ": keep-alive"), 5)  # signed in: the stream stays open
        assert "event: done" not in before
        async with db.sessionmaker() as session, session.begin():
            await session.exec(delete(HttpSession))  # type: ignore[call-overload]
        after = await asyncio.wait_for(lines_until(lines, "event: done"), 5)
        assert after[-1] == "event: done"


async def test_a_csrf_token_works_only_with_the_session_it_was_signed_in_with(live_app: LiveApp) -> None:
    alice = await signed_in_client(live_app, "user@example.com")
    bob = await signed_in_client(live_app, "support@example.com")
    await alice.get("/orders/new")
    await bob.get("/orders/new")
    bobs_token = bob.cookies["csrftoken"]
    # Alice's session with Bob's token, in the cookie and the header alike: a valid pair, but not hers.
    alice.cookies.delete("csrftoken")
    alice.cookies.set("csrftoken", bobs_token)
    refused = await review(alice)
    assert refused.status_code == 403
    assert (await review(bob)).status_code == 200


async def test_a_csrf_token_planted_before_sign_in_is_replaced_at_sign_in(live_app: LiveApp) -> None:
    """Someone who set the browser's CSRF cookie beforehand (a sibling domain can) cannot post for the session."""
    attacker = live_app.client()
    await attacker.get("/")
    planted = attacker.cookies["csrftoken"]  # a valid token, minted for the attacker's own visit
    victim = live_app.client()
    victim.cookies.jar.set_cookie(next(c for c in attacker.cookies.jar if c.name == "csrftoken"))
    start = await victim.get("/login", follow_redirects=False)
    chosen = httpx.post(start.headers["location"], data={"sub": "user@example.com"}, follow_redirects=False)
    signed_in = await victim.get(chosen.headers["location"].removeprefix(live_app.url), follow_redirects=False)
    assert signed_in.status_code in (302, 303)
    fresh = victim.cookies["csrftoken"]
    assert fresh != planted
    assert signed_in.cookies["csrftoken"] == fresh  # sent with the sign-in's answer
    forger = live_app.client()  # the victim's session cookie with the planted token, as a forged form would send
    forger.cookies.set("session", victim.cookies["session"])
    forger.cookies.set("csrftoken", planted)
    forged = await forger.post("/orders/review", data={**FORM, "_csrf_token": planted})
    assert forged.status_code == 403
    assert (await review(victim)).status_code == 200  # the page's own token, from the new cookie


@pytest.mark.parametrize("previous_kept", [True, False])
async def test_a_session_secret_rotation_keeps_a_signed_in_persons_next_form_post_working(
    live_app: LiveApp, previous_kept: bool
) -> None:
    """The page was drawn before the change; the post reaches an instance that already has the new secret."""
    person = await signed_in_client(live_app)
    await person.get("/orders/new")  # the form, with its token minted under the old secret
    old = live_app.settings.session.secret
    session = SessionSettings(secret="the-new-session-secret-of-at-least-32-chars", previous_secret=old)
    rotated = live_app.settings.model_copy(
        update={"session": session if previous_kept else session.model_copy(update={"previous_secret": None})}
    )
    port = free_port()
    async with serving(create_app(rotated), port) as url:
        after = httpx.AsyncClient(base_url=url, cookies=person.cookies, timeout=20)
        async with after:
            posted = await after.post("/orders/review", data={**FORM, "_csrf_token": person.cookies["csrftoken"]})
            assert posted.status_code == (303 if previous_kept else 403)
            if previous_kept:  # the checked cash-out waits on the review page, as before the change
                assert (await after.get("/orders/review")).status_code == 200


async def test_a_session_without_a_bound_csrf_token_is_asked_to_sign_in_again(live_app: LiveApp, db: Db) -> None:
    """Sessions signed in before tokens were bound to them cannot post; signing in again fixes that."""
    person = await signed_in_client(live_app)
    async with db.sessionmaker() as session, session.begin():
        row = (await session.exec(select(HttpSession))).one()
        data = json.loads(row.data)
        del data["csrf"]
        row.data = json.dumps(data).encode()
    data = {**FORM, "_csrf_token": person.cookies["csrftoken"]}
    answer = await person.post("/orders/review", data=data)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


@both_databases
async def test_a_key_set_by_many_at_once_keeps_one_row_and_an_expired_one_reads_as_gone(database_url: str) -> None:
    await create_schema(database_url)
    engine = make_engine(database_url)
    store = DatabaseStore(engine)
    await asyncio.gather(*(store.set("new", f"value {n}", expires_in=60) for n in range(8)))
    assert (await store.get("new") or b"").startswith(b"value ")
    await store.set("short", b"soon gone", expires_in=1)
    await asyncio.sleep(1.1)
    assert await store.get("short", renew_for=60) is None  # expired: not renewed, and removed
    async with make_sessionmaker(engine)() as session:
        assert (await session.exec(select(HttpSession.key))).all() == ["new"]
    await engine.dispose()
