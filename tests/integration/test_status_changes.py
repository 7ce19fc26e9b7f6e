"""The one owner of status changes under concurrency: two units never decide on the same state (both databases)."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import col, select

from tests.builders import make_order
from tests.integration.conftest import both_databases, database_with_schema
from webapp.auth.models import User
from webapp.db import Database, utcnow
from webapp.notifications.models import EmailMessage
from webapp.orders import storage
from webapp.orders.live import make_channels
from webapp.orders.models import Order, OrderEvent, OrderTransition
from webapp.orders.recipients import SavedRecipient
from webapp.orders.status_card import StatusCard
from webapp.orders.statuses import OrderStatus
from webapp.orders.storage import FLAG_KIND, insert_order, order_history, status_cards
from webapp.orders.transitions import StatusChanges
from webapp.services import live_publisher, status_changes


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with database_with_schema(database_url) as database:
        yield database


@pytest.fixture
def changes(db: Database) -> StatusChanges:
    return status_changes(db, live_publisher(db, make_channels()))


async def placed_order(db: Database, subject: str = "someone", **overrides: Any) -> int:
    """The id of a new order awaiting payment, of a new person."""
    async with db.sessionmaker() as session, session.begin():
        user = User(issuer="https://idp.example", subject=subject, email=f"{subject}@example.com")
        session.add(user)
        await session.flush()
        order = make_order(user_id=user.id, email=user.email, **overrides)
        session.add(order)
        await session.flush()
        return order.id or 0


@both_databases
async def test_concurrent_units_apply_a_status_once(db: Database, changes: StatusChanges) -> None:
    order_id = await placed_order(db)

    async def apply(target: OrderStatus) -> None:
        async with changes.unit() as change:
            locked = await change.lock(order_id)
            assert locked is not None
            await asyncio.sleep(0.05)  # both units hold what they read while the other tries
            await change.apply_status(locked, target, source="ipn")

    await asyncio.gather(*(apply(OrderStatus.PAYMENT_COMPLETED) for _ in range(4)), apply(OrderStatus.SUCCESS))
    async with db.sessionmaker() as session:
        moves = (await session.exec(select(OrderTransition.to_status).order_by(col(OrderTransition.id)))).all()
        mails = (await session.exec(select(EmailMessage.kind))).all()
    assert moves in (["PAYMENT_COMPLETED", "SUCCESS"], ["SUCCESS"])  # never twice, never backwards
    assert sorted(mails) == sorted({"PAYMENT_COMPLETED": "paid_out", "SUCCESS": "done"}[move] for move in moves)


@both_databases
async def test_a_locked_order_is_the_order_the_orm_loads(db: Database, changes: StatusChanges) -> None:
    order_id = await placed_order(db, partner_user_id="p-1")
    async with db.sessionmaker() as session:
        loaded = await session.get(Order, order_id)
    async with changes.unit() as change:
        locked = await change.lock(order_id)
        assert loaded is not None
        assert locked is not None and locked.model_dump() == loaded.model_dump()
        change.update(locked, status="PAYMENT_COMPLETED")
        assert locked.status == "PAYMENT_COMPLETED"
    async with db.sessionmaker() as session:
        assert (await session.exec(select(Order.status))).one() == "PAYMENT_COMPLETED"


@both_databases
async def test_paying_out_two_orders_to_one_account_at_once_keeps_one_recipient(
    db: Database, changes: StatusChanges
) -> None:
    """Two concurrent payouts to the same account: one saved recipient, refreshed, and no status change refused."""
    first = await placed_order(db)
    async with db.sessionmaker() as session, session.begin():
        user_id = (await session.get(Order, first)).user_id
        second = make_order(user_id=user_id, email="someone@example.com")
        unsaved = make_order(
            user_id=user_id, email="someone@example.com", account_number="55555555", save_recipient=False
        )
        session.add_all([second, unsaved])
        await session.flush()
        ids = [first, second.id or 0, unsaved.id or 0]

    async def pay_out(order_id: int) -> None:
        async with changes.unit() as change:
            locked = await change.lock(order_id)
            await change.apply_status(locked, OrderStatus.PAYMENT_COMPLETED, source="ipn")

    await asyncio.gather(*(pay_out(order_id) for order_id in ids))
    await pay_out(first)  # a duplicate IPN: nothing new
    async with db.sessionmaker() as session:
        kept = (await session.exec(select(SavedRecipient))).all()
        moved = (await session.exec(select(OrderTransition.order_id))).all()
    assert sorted(moved) == sorted(ids)
    assert [(row.user_id, row.account_number) for row in kept] == [(user_id, "19030413601018")]


@both_databases
async def test_a_live_updates_card_is_the_card_the_order_page_reads(
    db: Database, changes: StatusChanges, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status card the committing instance publishes shows what a page reading the order shows, and survives
    its trip through a notification unchanged."""
    flagged_id = await placed_order(db)
    plain_id = await placed_order(db, "other", rejection_message="Sai tên người nhận")
    for target in (OrderStatus.PAYMENT_COMPLETED, OrderStatus.SUCCESS):
        async with changes.unit() as change:
            order = await change.lock(flagged_id)
            assert order is not None
            await change.apply_status(order, target, source="ipn")
    async with changes.unit() as change:
        order = await change.lock(flagged_id)
        assert order is not None
        change.flag(order, FLAG_KIND, "amount differs", source="ipn")
    cards = await status_cards(db.reader, [flagged_id, plain_id, 999_999])
    assert set(cards) == {flagged_id, plain_id}
    for order_id, card in cards.items():
        async with db.sessionmaker() as session:
            order = await session.get(Order, order_id)
        assert order is not None
        history = await order_history(db.reader, order.external_order_id, user_id=order.user_id or 0)
        assert history is not None and card == history.card()
        assert StatusCard.from_wire(json.loads(json.dumps(card.wire()))) == card
    flagged, plain = cards[flagged_id], cards[plain_id]
    assert [status for status, _ in flagged.reached] == ["PAYMENT_COMPLETED", "SUCCESS"] and len(flagged.flagged) == 1
    assert plain.reached == () and plain.flagged == () and plain.rejection_message == "Sai tên người nhận"
    assert flagged.version == 3 and plain.version == 0
    with monkeypatch.context() as patched:  # many orders changed at once are read a slice at a time
        patched.setattr(storage, "CARDS_PER_READ", 1)
        assert await status_cards(db.reader, [plain_id, 999_999, flagged_id]) == cards


@both_databases
async def test_a_second_submission_of_a_cash_out_finds_the_first_order_and_stores_nothing(db: Database) -> None:
    first_id = await placed_order(db, submission_id="one-form")
    async with db.sessionmaker() as session:
        user_id = (await session.exec(select(Order.user_id).where(Order.id == first_id))).one()
    again = make_order(user_id=user_id, email="someone@example.com", submission_id="one-form")
    event = {"kind": "create_request", "source": "create", "detail": "", "receipt_id": None, "at": utcnow()}
    found, stored_now = await insert_order(db.engine, again, event)
    assert (found.id, stored_now) == (first_id, False)
    assert len(await rows_of(db, Order)) == 1 and await rows_of(db, OrderEvent) == []
    fresh, stored_now = await insert_order(db.engine, make_order(user_id=user_id, email="someone@example.com"), event)
    assert stored_now and fresh.id not in (None, first_id)
    assert [row.order_id for row in await rows_of(db, OrderEvent)] == [fresh.id]


async def rows_of(db: Database, model: type) -> list[Any]:
    async with db.sessionmaker() as session:
        return list((await session.exec(select(model))).all())
