"""Support search and the audit chain on a real database (SQLite and PostgreSQL)."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.builders import make_order
from tests.conftest import create_schema
from tests.integration.conftest import both_databases
from tests.processes import ROOT
from webapp import audit
from webapp.auth.models import User
from webapp.config import Settings
from webapp.db import make_engine, make_sessionmaker
from webapp.orders.models import Order, OrderEvent
from webapp.rendering import DISPLAY_TIMEZONE
from webapp.support.search import Console, SearchQuery, search

pytestmark = both_databases
STUCK_AFTER = timedelta(hours=1)
NOW = datetime.now(UTC)


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await create_schema(database_url)
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def order(user: User, number: int, **fields: object) -> Order:
    """The `number`th order of `user`, placed `number` minutes ago; account and content differ per number."""
    values: dict[str, object] = {
        "status": "SUCCESS",
        "fiat_amount": 100_000 + number,
        "account_number": f"{number:010d}",
        "transfer_content": f"RUT TIEN {number:08d}".replace("0", "A").replace("1", "B"),
        "created_at": NOW - timedelta(minutes=number),
        "updated_at": NOW - timedelta(minutes=number),
    }
    return make_order(user_id=user.id, email=user.email, **(values | fields))


async def seed(sessionmaker: async_sessionmaker[AsyncSession], count: int = 30) -> dict[str, Order]:
    """`count` ordinary orders of one customer, plus a few with distinctive keys, by name."""
    async with sessionmaker() as session, session.begin():
        alice = User(issuer="https://idp", subject="alice", email="alice.nguyen@example.com")
        bob = User(issuer="https://idp", subject="bob", email="bob@example.vn")
        session.add_all([alice, bob])
        await session.flush()
        named = {
            "bob": order(bob, 1000, account_number="0071000123456", transfer_content="RUT TIEN 7Q2K9MXA"),
            "hash": order(bob, 1001, provider_tx_hash="0xabc123def4567890abc123def4567890", status="PAYMENT_COMPLETED"),
            "content": order(bob, 1002, provider_content="ALIX REF 99812"),
            "stuck": order(bob, 1003, status="AWAITING_PAYMENT", updated_at=NOW - timedelta(hours=5)),
            "fresh": order(bob, 1004, status="AWAITING_PAYMENT", updated_at=NOW),
        }
        session.add_all([order(alice, number) for number in range(count)] + list(named.values()))
        await session.flush()
        session.add(OrderEvent(order_id=named["hash"].id, kind="mismatch", source="ipn", detail="fiatAmount"))
    return named


CONSOLE = Console(STUCK_AFTER)


async def found(
    sessionmaker: async_sessionmaker[AsyncSession], query: SearchQuery, console: Console = CONSOLE
) -> list[str]:
    async with sessionmaker() as session:
        page = await search(session, query, console=console, size=100)
    return [order.external_order_id for order in page.orders]


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("bob@example.vn", "bob"),
        ("BOB@example.VN", "bob"),
        ("bob@exa", "bob"),
        ("3456", "bob"),
        ("0071000123456", "bob"),
        ("123456", "bob"),
        ("RUT TIEN 7Q2K9MXA", "bob"),
        ("7q2k9mxa", "bob"),
        ("0xabc123def4567890abc123def4567890", "hash"),
        ("alix ref 99812", "content"),
    ],
)
async def test_search_finds_an_order_by_each_key(
    sessionmaker: async_sessionmaker[AsyncSession], typed: str, name: str
) -> None:
    named = await seed(sessionmaker, count=3)
    assert named[name].external_order_id in await found(sessionmaker, SearchQuery(text=typed))


async def test_search_by_order_id_whole_start_and_number(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    named = await seed(sessionmaker, count=3)
    target = named["content"]
    for typed in (
        target.external_order_id,
        target.external_order_id[:8],
        target.external_order_id.upper(),
        str(target.id),
    ):
        assert target.external_order_id in await found(sessionmaker, SearchQuery(text=typed)), typed
    assert await found(sessionmaker, SearchQuery(text="nobody@nowhere.example")) == []


async def test_filters_combine(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    named = await seed(sessionmaker, count=3)
    bob = SearchQuery(text="bob@example.vn")
    assert set(await found(sessionmaker, replace(bob, statuses=("AWAITING_PAYMENT",)))) == {
        named["stuck"].external_order_id,
        named["fresh"].external_order_id,
    }
    stuck = {named["stuck"].external_order_id, named["hash"].external_order_id}  # not final, quiet for hours
    assert set(await found(sessionmaker, replace(bob, stuck=True))) == stuck
    assert await found(sessionmaker, replace(bob, statuses=("SUCCESS",), stuck=True)) == []
    assert await found(sessionmaker, SearchQuery(disagreement=True)) == [named["hash"].external_order_id]
    assert await found(sessionmaker, replace(bob, disagreement=True, statuses=("SUCCESS",))) == []
    today = NOW.astimezone(DISPLAY_TIMEZONE).date()  # the days of the console's clock
    yesterday = today - timedelta(days=1)
    ages = {o.external_order_id for o in named.values() if o.created_at.astimezone(DISPLAY_TIMEZONE).date() == today}
    assert set(await found(sessionmaker, replace(bob, date_from=today, date_to=today))) == ages
    assert await found(sessionmaker, replace(bob, date_to=date(2000, 1, 1))) == []
    assert len(await found(sessionmaker, SearchQuery(date_from=yesterday))) == 3 + len(named)


async def test_a_day_is_a_vietnam_day_as_the_console_shows_it(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """An order placed at 04:19 Vietnam time (21:19 UTC the day before) is found under its Vietnam date."""
    async with sessionmaker() as session, session.begin():
        user = User(issuer="https://idp.example", subject="early", email="early@example.vn")
        session.add(user)
        await session.flush()
        early = order(user, 1, created_at=datetime(2026, 12, 4, 21, 19, tzinfo=UTC))
        session.add(early)
    day = date(2026, 12, 5)
    assert await found(sessionmaker, SearchQuery(date_from=day, date_to=day)) == [early.external_order_id]
    assert await found(sessionmaker, SearchQuery(date_to=day - timedelta(days=1))) == []
    # The console's time zone is a setting: an agent in UTC finds it under the 4th, as their clock says.
    in_utc = Console(STUCK_AFTER, Settings(support_timezone="UTC").console_timezone)
    assert await found(sessionmaker, SearchQuery(date_from=day, date_to=day), in_utc) == []
    fourth = day - timedelta(days=1)
    assert await found(sessionmaker, SearchQuery(date_from=fourth, date_to=fourth), in_utc) == [early.external_order_id]


async def test_pages_stay_stable_while_new_orders_arrive(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await seed(sessionmaker, count=30)
    query = SearchQuery(text="alice.nguyen@example.com")
    async with sessionmaker() as session:
        first = await search(session, query, console=Console(STUCK_AFTER), size=25)
    async with sessionmaker() as session, session.begin():  # a new order arrives between the two pages
        alice = (await session.exec(text("SELECT id FROM user_account WHERE subject = 'alice'"))).scalar_one()
        session.add(order(User(id=alice, issuer="i", subject="alice", email="alice.nguyen@example.com"), -5))
    async with sessionmaker() as session:
        second = await search(
            session, replace(query, after=first.next_after or ""), console=Console(STUCK_AFTER), size=25
        )
    seen = [o.id for o in first.orders] + [o.id for o in second.orders]
    assert len(first.orders) == 25 and len(second.orders) == 5 and second.next_after is None
    assert len(set(seen)) == 30  # nothing twice, nothing skipped, the newcomer not pushed into page two
    assert [o.created_at for o in first.orders + second.orders] == sorted(
        (o.created_at for o in first.orders + second.orders), reverse=True
    )


def audit_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "webapp", "audit", "verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("tamper", "broken_row"),
    [
        ("UPDATE audit_entry SET reason = 'nothing to see' WHERE id = 2", 2),
        ("DELETE FROM audit_entry WHERE id = 2", 3),
        (
            "UPDATE audit_entry SET id = id + 100 WHERE id = 2; UPDATE audit_entry SET id = 2 WHERE id = 3;"
            " UPDATE audit_entry SET id = 3 WHERE id = 102",
            2,
        ),
    ],
    ids=["edited", "deleted", "reordered"],
)
async def test_audit_chain_verifies_and_names_the_first_tampered_row(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, tamper: str, broken_row: int
) -> None:
    await seed(sessionmaker, count=1)
    for number in range(4):
        await audit.append(sessionmaker, actor="agent@example.com", action="reveal", reason=f"ticket {number}")
    intact = await asyncio.to_thread(audit_verify, database_url)
    assert (intact.returncode, intact.stdout.strip()) == (0, "audit log intact: 4 rows")
    async with sessionmaker() as session, session.begin():
        for statement in tamper.split(";"):
            await session.exec(text(statement))  # type: ignore[call-overload]
    broken = await asyncio.to_thread(audit_verify, database_url)
    assert broken.returncode == 1
    assert f"audit log broken at row {broken_row}" in broken.stderr


async def test_concurrent_appends_keep_one_chain(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await asyncio.gather(*(audit.append(sessionmaker, actor="a@example.com", action="review") for _ in range(8)))
    async with sessionmaker() as session:
        check = await audit.verify_chain(session)
    assert (check.rows, check.broken_at) == (8, None)
