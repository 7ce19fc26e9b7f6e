"""A unit's batched writes: on PostgreSQL the INSERTs and UPDATEs by key in one round trip, with the same rows."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from tests.integration.conftest import both_databases, database_with_schema, seed_orders
from webapp.activity.counts import INSERT_COUNT, ActivityCount
from webapp.db import Database
from webapp.ipn.models import IpnReceipt
from webapp.orders.models import OrderTransition
from webapp.orders.recipients import KEEP, SavedRecipient
from webapp.orders.storage import INSERT_TRANSITION, ORDERS, UPDATE_ORDER
from webapp.sql_runner import DriverRunner, in_transaction, standalone
from webapp.sql_together import write_together

RECEIPTS = IpnReceipt.__table__
TRANSITIONS = OrderTransition.__table__
SET_VERDICT = update(RECEIPTS).where(RECEIPTS.c.id == bindparam("receipt_id"))
AT = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
KINDS = ("placed:pending", "placed:succeeded", "payout:0", "ipn:0")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with database_with_schema(database_url) as database:
        yield database


async def two_orders_and_a_receipt(db: Database, database_url: str) -> tuple[list[int], int, int]:
    """(the ids of two orders, their person's id, an unjudged receipt's id)."""
    await seed_orders(database_url, "together@example.com", 2)
    async with in_transaction(db.engine) as sql:
        orders = await sql.rows(select(ORDERS.c.id, ORDERS.c.user_id).order_by(ORDERS.c.id))
        stored = insert(RECEIPTS).returning(RECEIPTS.c.id)
        receipt = await sql.write(stored, [{"body": b"{}", "body_size": 2, "headers": {}, "dedupe_key": "k"}])
    return [row["id"] for row in orders], orders[0]["user_id"], receipt[0]["id"]


def transition(order_id: int, to_status: str, **values: Any) -> dict[str, Any]:
    return {"order_id": order_id, "from_status": "AWAITING_PAYMENT", "to_status": to_status, "source": "ipn"} | values


def recipient(user_id: int, name: str) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "bank_bin": "970407",
        "bank_name": "Techcombank",
        "account_number": "19030413601018",
        "recipient_name": name,
        "label": None,
        "created_at": AT,
        "last_used_at": AT,
    }


class RoundTrips:
    """Counts the statements a driver runner sends (each call is one round trip)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in ("rows", "write"):
            sent = getattr(DriverRunner, name)

            async def counted(runner: DriverRunner, *args: Any, _sent: Any = sent) -> Any:
                self.count += 1
                return await _sent(runner, *args)

            monkeypatch.setattr(DriverRunner, name, counted)


@both_databases
async def test_writes_together_leave_the_rows_that_writes_one_by_one_leave(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, second), user_id, receipt_id = await two_orders_and_a_receipt(db, database_url)
    round_trips = RoundTrips(monkeypatch)
    async with in_transaction(db.engine) as sql:
        await write_together(
            sql,
            [
                (UPDATE_ORDER, [{"order_id_": first, "status": "PAYMENT_COMPLETED", "provider_order": {"a": [1]}}]),
                (UPDATE_ORDER, [{"order_id_": second, "status": "SUCCESS", "expires_at": AT}]),  # other columns
                (
                    INSERT_TRANSITION,  # `at` and `note` left to their Python-side defaults
                    [
                        transition(first, "PAYMENT_COMPLETED", receipt_id=receipt_id),
                        transition(second, "PROCESSING_TOKEN_TRANSFER", receipt_id=None),
                        transition(second, "SUCCESS", receipt_id=None),
                    ],
                ),
                (KEEP[sql.dialect], [recipient(user_id, "FIRST"), recipient(user_id, "SECOND")]),  # an upsert
                (SET_VERDICT, [{"receipt_id": receipt_id, "verdict": "applied", "processed_at": AT}]),
                (INSERT_COUNT, [{"hour": AT, "kind": kind, "count": 1} for kind in KINDS]),  # `rolled` by default
                (INSERT_COUNT, []),  # nothing to write
            ],
        )
    if database_url.startswith("postgresql"):
        assert round_trips.count == 2  # the upsert on its own, then all the rest together
    async with standalone(db.reader) as sql:
        orders = await sql.rows(select(ORDERS).order_by(ORDERS.c.id))
        transitions = await sql.rows(select(TRANSITIONS).order_by(TRANSITIONS.c.id))
        verdict = await sql.rows(select(RECEIPTS.c.verdict, RECEIPTS.c.processed_at))
        kept = await sql.scalars(select(SavedRecipient.__table__.c.recipient_name))
        counts = await sql.rows(select(ActivityCount.__table__))
    assert [(order["status"], order["provider_order"], order["expires_at"]) for order in orders] == [
        ("PAYMENT_COMPLETED", {"a": [1]}, None),
        ("SUCCESS", {"type": "CASH_OUT"}, AT),
    ]
    assert [(row["order_id"], row["to_status"], row["receipt_id"]) for row in transitions] == [
        (first, "PAYMENT_COMPLETED", receipt_id),
        (second, "PROCESSING_TOKEN_TRANSFER", None),
        (second, "SUCCESS", None),
    ]  # in the order of the rows
    assert all(row["note"] == "" and abs(row["at"] - datetime.now(UTC)) < timedelta(minutes=1) for row in transitions)
    assert verdict == [{"verdict": "applied", "processed_at": AT}]
    assert kept == ["SECOND"]  # the second upsert refreshed the row the first made
    assert [(row["kind"], row["count"], row["rolled"]) for row in counts] == [(kind, 1, False) for kind in KINDS]


@both_databases
async def test_a_row_updated_twice_is_written_one_write_after_the_other(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement would change the row once, and which of the two changes is not defined: the last one wins."""
    (first, second), _, _ = await two_orders_and_a_receipt(db, database_url)
    round_trips = RoundTrips(monkeypatch)
    async with in_transaction(db.engine) as sql:
        await write_together(
            sql,
            [
                (
                    UPDATE_ORDER,
                    [{"order_id_": order_id, "status": "PAYMENT_COMPLETED"} for order_id in (first, second)],
                ),
                (INSERT_TRANSITION, [transition(first, "PAYMENT_COMPLETED") for _ in range(3)]),
                (UPDATE_ORDER, [{"order_id_": first, "status": "SUCCESS", "expires_at": AT}]),
            ],
        )
    if database_url.startswith("postgresql"):
        assert round_trips.count == 3
    async with standalone(db.reader) as sql:
        assert await sql.scalars(select(ORDERS.c.status).where(ORDERS.c.id == first)) == ["SUCCESS"]


@both_databases
async def test_writes_of_one_row_each_go_one_by_one(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone IPN's unit: one statement for its single rows would cost PostgreSQL more than the writes one by one."""
    (first, _), _, receipt_id = await two_orders_and_a_receipt(db, database_url)
    round_trips = RoundTrips(monkeypatch)
    async with in_transaction(db.engine) as sql:
        await write_together(
            sql,
            [
                (UPDATE_ORDER, [{"order_id_": first, "status": "PAYMENT_COMPLETED"}]),
                (INSERT_TRANSITION, [transition(first, "PAYMENT_COMPLETED", receipt_id=receipt_id)]),
                (SET_VERDICT, [{"receipt_id": receipt_id, "verdict": "applied"}]),
            ],
        )
    if database_url.startswith("postgresql"):
        assert round_trips.count == 3
    async with standalone(db.reader) as sql:
        assert await sql.scalars(select(ORDERS.c.status).where(ORDERS.c.id == first)) == ["PAYMENT_COMPLETED"]
        assert await sql.scalars(select(TRANSITIONS.c.receipt_id)) == [receipt_id]
        assert await sql.scalars(select(RECEIPTS.c.verdict)) == ["applied"]


@both_databases
async def test_a_failing_write_together_leaves_nothing_of_the_unit(db: Database, database_url: str) -> None:
    (first, _), _, receipt_id = await two_orders_and_a_receipt(db, database_url)
    with pytest.raises(IntegrityError):
        async with in_transaction(db.engine) as sql:
            await write_together(
                sql,
                [
                    (SET_VERDICT, [{"receipt_id": receipt_id, "verdict": "applied"}]),
                    (INSERT_TRANSITION, [transition(first, "PAYMENT_COMPLETED"), transition(0, "SUCCESS")] * 2),
                ],
            )  # no order 0
    async with standalone(db.reader) as sql:
        assert await sql.scalars(select(RECEIPTS.c.verdict)) == [None]
        assert await sql.scalars(select(TRANSITIONS.c.id)) == []
