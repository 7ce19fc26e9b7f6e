"""IPNs stored and judged a batch at a time: the verdicts of one-by-one judging, in receipt order, for a few statements
per batch; a receipt that raises fails alone; two processors never judge one receipt (both databases)."""

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlmodel import col, select

from tests.conftest import RsaKeys
from tests.integration.conftest import background_parts, both_databases, libpq_url, rows, seed_orders
from tests.integration.ipn_bodies import EXTERNAL_ID, ipn_body
from tests.processes import async_wait_for
from webapp.alixpay.client import AlixPayClient
from webapp.config import Settings
from webapp.db import Database
from webapp.ipn.intake import IpnIntake
from webapp.ipn.models import IpnReceipt
from webapp.ipn.service import Delivery, IntakeVerdict, RetryPolicy, process_many, store_raw
from webapp.notifications.models import EmailMessage
from webapp.orders.models import OrderEvent, OrderTransition
from webapp.orders.state import Verdict

pytestmark = both_databases


@contextmanager
def counted_statements(db: Database) -> Iterator[list[str]]:
    """Every statement sent while the block runs (an executemany counts once): SQLAlchemy's on SQLite, and on
    PostgreSQL asyncpg's, whether SQLAlchemy sent them or the hot paths' runner did (`sql_runner.py`)."""
    sent: list[str] = []
    if db.engine.dialect.name != "postgresql":

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            sent.append(statement)

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        try:
            yield sent
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        return
    with pytest.MonkeyPatch.context() as patch:
        for owner, name, text_of in DRIVER_CALLS:
            patch.setattr(owner, name, counting(getattr(owner, name), text_of, sent))
        yield sent


def counting(call: Any, text_of: Any, sent: list[str]) -> Any:
    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(text_of(self, args))
        return await call(self, *args, **kwargs)

    return counted


DRIVER_CALLS = [
    (asyncpg.Connection, "fetch", lambda _connection, args: args[0]),
    (asyncpg.Connection, "fetchmany", lambda _connection, args: args[0]),
    (asyncpg.Connection, "executemany", lambda _connection, args: args[0]),
    (asyncpg.prepared_stmt.PreparedStatement, "fetch", lambda statement, _args: statement.get_query()),
]
"""Every way a statement reaches PostgreSQL here (a transaction's BEGIN and COMMIT aside)."""


async def test_a_batch_gets_the_verdicts_of_one_by_one_judging_in_receipt_order(
    seeded: Settings, rsa_keys: RsaKeys
) -> None:
    first, second = await seed_orders(seeded.database.url, "u2@example.com", 2)
    alix = rsa_keys.alix.private
    expected = [
        (ipn_body(seeded, alix, status="PAYMENT_COMPLETED"), Verdict.APPLIED),
        (ipn_body(seeded, alix, status="PAYMENT_COMPLETED"), Verdict.DUPLICATE),  # delivered again
        (ipn_body(seeded, alix, status="SUCCESS"), Verdict.APPLIED),
        (ipn_body(seeded, alix, status="PROCESSING_TOKEN_TRANSFER"), Verdict.STALE),  # late, after SUCCESS
        (ipn_body(seeded, alix, order_id=first, status="SUCCESS"), Verdict.APPLIED),
        (b"{not json", IntakeVerdict.MALFORMED),
        (ipn_body(seeded, rsa_keys.other.private, order_id=first), IntakeVerdict.BAD_SIGNATURE),
        (ipn_body(seeded, alix, order_id=str(uuid.uuid4())), IntakeVerdict.UNKNOWN_ORDER),
        (ipn_body(seeded, alix, order_id=second, status="REFUNDED"), Verdict.UNKNOWN_STATUS),
        (ipn_body(seeded, alix, order_id=second, fiat_amount=5), Verdict.MISMATCH),
    ]
    async with background_parts(seeded) as (db, changes, alixpay):
        receipt_ids = await store_raw(db, *(Delivery(body) for body, _ in expected))
        verdicts = await process_many(receipt_ids, db=db, changes=changes, alixpay=alixpay, retry=RetryPolicy())
    assert [verdicts[receipt_id].verdict for receipt_id in receipt_ids] == [verdict for _, verdict in expected]
    receipts = sorted(await rows(seeded, IpnReceipt), key=lambda receipt: receipt.id)
    assert [receipt.verdict for receipt in receipts] == [verdict.value for _, verdict in expected]
    moves = sorted(await rows(seeded, OrderTransition), key=lambda move: move.id)
    assert [(move.from_status, move.to_status, move.receipt_id) for move in moves] == [
        ("AWAITING_PAYMENT", "PAYMENT_COMPLETED", receipt_ids[0]),
        ("PAYMENT_COMPLETED", "SUCCESS", receipt_ids[2]),
        ("AWAITING_PAYMENT", "SUCCESS", receipt_ids[4]),
    ]
    assert sorted(mail.status for mail in await rows(seeded, EmailMessage)) == [
        "PAYMENT_COMPLETED",
        "SUCCESS",
        "SUCCESS",
    ]
    (flag,) = await rows(seeded, OrderEvent)
    assert (flag.kind, flag.receipt_id) == ("mismatch", receipt_ids[9])


async def test_a_receipt_that_raises_fails_alone_and_the_rest_of_its_batch_is_applied(
    seeded: Settings, rsa_keys: RsaKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    (other,) = await seed_orders(seeded.database.url, "u2@example.com", 1)
    verify = AlixPayClient.verify_ipn

    def fails_on_success(client: AlixPayClient, provider: Any) -> bool:
        if provider.status == "SUCCESS":
            raise RuntimeError("judging broke")
        return verify(client, provider)

    monkeypatch.setattr(AlixPayClient, "verify_ipn", fails_on_success)
    bodies = [
        ipn_body(seeded, rsa_keys.alix.private),
        ipn_body(seeded, rsa_keys.alix.private, order_id=other, status="SUCCESS"),
        ipn_body(seeded, rsa_keys.alix.private, order_id=other),
    ]
    async with background_parts(seeded) as (db, changes, alixpay):
        receipt_ids = await store_raw(db, *(Delivery(body) for body in bodies))
        verdicts = await process_many(receipt_ids, db=db, changes=changes, alixpay=alixpay, retry=RetryPolicy())
    assert [verdicts[receipt_id].verdict for receipt_id in receipt_ids] == ["applied", "error", "applied"]
    receipts = sorted(await rows(seeded, IpnReceipt), key=lambda receipt: receipt.id)
    assert [(receipt.verdict, receipt.attempts) for receipt in receipts] == [
        ("applied", 0),
        ("error", 1),
        ("applied", 0),
    ]
    assert len(await rows(seeded, OrderTransition)) == 2


async def test_concurrent_ipns_are_stored_and_judged_together_in_a_few_statements(
    seeded: Settings, rsa_keys: RsaKeys
) -> None:
    external_ids = await seed_orders(seeded.database.url, "u2@example.com", 32)
    bodies = [ipn_body(seeded, rsa_keys.alix.private, order_id=external_id) for external_id in external_ids]
    async with background_parts(seeded) as (db, changes, alixpay):
        intake = IpnIntake(db, changes, alixpay, RetryPolicy(), seeded.ipn_max_body_bytes)
        await asyncio.gather(*(intake.receive(Delivery(body)) for body in bodies[:2]))  # connections opened
        with counted_statements(db) as sent:
            answers = await asyncio.gather(*(intake.receive(Delivery(body)) for body in bodies[2:]))
    assert [judged.verdict for _, judged in answers] == [Verdict.APPLIED] * (len(bodies) - 2)
    assert [judged.external_order_id for _, judged in answers] == external_ids[2:]  # each request its own
    assert len(await rows(seeded, OrderTransition)) == len(bodies)
    stored = [statement for statement in sent if statement.startswith("INSERT INTO ipn_receipt")]
    judging = [statement for statement in sent if statement not in stored]
    # Claim the receipts, lock the orders, look for earlier deliveries, then one executemany each for transitions,
    # emails, the activity charts' counts, orders and verdicts (SQLite adds a write before each lock). One by one,
    # each IPN took ten.
    assert len(judging) <= 11, judging
    if db.engine.dialect.name == "postgresql":
        assert len(stored) == 1  # SQLite cannot keep the order of a multi-row RETURNING: a row each, in-process


async def test_a_receipt_whose_request_went_away_is_still_judged(seeded: Settings, rsa_keys: RsaKeys) -> None:
    async with background_parts(seeded) as (db, changes, alixpay):
        intake = IpnIntake(db, changes, alixpay, RetryPolicy(), seeded.ipn_max_body_bytes)
        waiting = asyncio.create_task(intake.receive(Delivery(ipn_body(seeded, rsa_keys.alix.private))))
        await asyncio.sleep(0)
        waiting.cancel()

        async def judged() -> list[IpnReceipt]:
            return [receipt for receipt in await rows(seeded, IpnReceipt) if receipt.verdict]

        (receipt,) = await async_wait_for(judged, timeout=10, what="the receipt judged")
    assert receipt.verdict == "applied"
    assert [move.to_status for move in await rows(seeded, OrderTransition)] == ["PAYMENT_COMPLETED"]


async def test_receipts_are_stored_while_earlier_ones_are_being_judged(seeded: Settings, rsa_keys: RsaKeys) -> None:
    if not seeded.database.url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: the lock that holds the judging back would hold back the storing too")
    (other_order,) = await seed_orders(seeded.database.url, "u2@example.com", 1)
    holder = await asyncpg.connect(libpq_url(seeded.database.url))
    try:
        async with background_parts(seeded) as (db, changes, alixpay):
            intake = IpnIntake(db, changes, alixpay, RetryPolicy(), seeded.ipn_max_body_bytes)
            lock = holder.transaction()
            await lock.start()
            await holder.execute("SELECT id FROM cashout_order WHERE external_order_id = $1 FOR UPDATE", EXTERNAL_ID)
            first = asyncio.create_task(intake.receive(Delivery(ipn_body(seeded, rsa_keys.alix.private))))
            await async_wait_for(lambda: rows(seeded, IpnReceipt), timeout=10, what="the first receipt stored")
            second = asyncio.create_task(
                intake.receive(Delivery(ipn_body(seeded, rsa_keys.alix.private, order_id=other_order)))
            )

            async def both_stored() -> bool:
                return len(await rows(seeded, IpnReceipt)) == 2

            # The first receipt's judging waits for its order's lock; the second is committed raw meanwhile.
            await async_wait_for(both_stored, timeout=10, what="the second receipt stored while the first is judged")
            assert not first.done() and not second.done()
            await lock.rollback()
            answers = await asyncio.wait_for(asyncio.gather(first, second), 10)
    finally:
        await holder.close()
    assert [judged.verdict for _, judged in answers] == [Verdict.APPLIED, Verdict.APPLIED]


async def test_two_processors_of_the_same_receipts_judge_each_once(seeded: Settings, rsa_keys: RsaKeys) -> None:
    external_ids = [EXTERNAL_ID, *await seed_orders(seeded.database.url, "u2@example.com", 7)]
    bodies = [
        ipn_body(seeded, rsa_keys.alix.private, order_id=external_id, status=status)
        for external_id in external_ids
        for status in ("PAYMENT_COMPLETED", "SUCCESS")
    ]
    async with background_parts(seeded) as (db, changes, alixpay), background_parts(seeded) as (elsewhere, others, _):
        receipt_ids = await store_raw(db, *(Delivery(body) for body in bodies))
        retry = RetryPolicy()
        mine, theirs = await asyncio.gather(
            process_many(receipt_ids, db=db, changes=changes, alixpay=alixpay, retry=retry),
            process_many(list(reversed(receipt_ids)), db=elsewhere, changes=others, alixpay=alixpay, retry=retry),
        )
    assert {judged.verdict for judged in [*mine.values(), *theirs.values()]} == {Verdict.APPLIED}
    assert mine.keys() == theirs.keys() == set(receipt_ids)
    async with background_parts(seeded) as (db, _, _), db.sessionmaker() as session:
        moves = (await session.exec(select(OrderTransition.receipt_id).order_by(col(OrderTransition.id)))).all()
    assert sorted(moves) == receipt_ids  # each applied once
