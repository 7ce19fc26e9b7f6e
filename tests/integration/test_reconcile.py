"""A reconciliation poll holds nothing while Alix Pay answers: the IPNs of its order are judged meanwhile, and the
answer is applied to the order as it is when it comes."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from tests.conftest import RsaKeys
from tests.integration.conftest import background_parts, both_databases, rows
from tests.integration.ipn_bodies import ipn_body
from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.parsing import parse_json
from webapp.alixpay.schemas import OrderObject
from webapp.config import Settings
from webapp.db import Database
from webapp.ipn.service import Delivery, Judged, RetryPolicy, process_many, store_raw
from webapp.orders.models import Order, OrderEvent
from webapp.orders.phrases import POLL_BEHIND, POLL_SAYS
from webapp.orders.reconcile import reconcile_once
from webapp.orders.state import Verdict
from webapp.orders.transitions import StatusChanges

JUDGED_WITHIN = 10.0
"""Seconds an IPN may take to be judged here: far longer than it needs, far shorter than the poll is held."""


@dataclass
class SlowAlixPay:
    """Alix Pay's details call, answered only once the test says so."""

    answer: OrderObject
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def get_order(self, _external_order_id: str) -> OrderObject:
        """Set on the client's class as a bound method: called without the client."""
        self.asked.set()
        await self.release.wait()
        return self.answer


@pytest.fixture
async def parts(seeded: Settings) -> AsyncIterator[tuple[Database, StatusChanges, AlixPayClient]]:
    async with background_parts(seeded) as built:
        yield built


async def judge_ipn(parts: tuple[Database, StatusChanges, AlixPayClient], body: bytes) -> Judged:
    db, changes, alixpay = parts
    (receipt_id,) = await store_raw(db, Delivery(body))
    return (await process_many([receipt_id], db=db, changes=changes, alixpay=alixpay, retry=RetryPolicy()))[receipt_id]


def signed_order(settings: Settings, rsa_keys: RsaKeys, status: str) -> bytes:
    return ipn_body(settings, rsa_keys.alix.private, status=status)


@both_databases
@pytest.mark.parametrize("ipn_while_asking", [True, False], ids=["ipn-while-asking", "ipn-before"])
async def test_a_poll_waiting_for_alix_pay_holds_nothing_and_applies_its_answer_to_the_order_as_it_is_then(
    seeded: Settings,
    rsa_keys: RsaKeys,
    parts: tuple[Database, StatusChanges, AlixPayClient],
    monkeypatch: pytest.MonkeyPatch,
    ipn_while_asking: bool,
) -> None:
    # Alix Pay answers the poll with the status the order had when it was asked: behind the IPN's.
    answer = OrderObject.model_validate(parse_json(signed_order(seeded, rsa_keys, "AWAITING_PAYMENT")))
    slow = SlowAlixPay(answer)
    monkeypatch.setattr(AlixPayClient, "get_order", slow.get_order)
    ipn = signed_order(seeded, rsa_keys, "PAYMENT_COMPLETED")
    db, changes, alixpay = parts
    if not ipn_while_asking:
        assert (await judge_ipn(parts, ipn)).verdict is Verdict.APPLIED
    poll = asyncio.create_task(reconcile_once(db=db, changes=changes, alixpay=alixpay, silence=timedelta(0)))
    try:
        await asyncio.wait_for(slow.asked.wait(), JUDGED_WITHIN)
        (claimed,) = await rows(seeded, Order)
        assert claimed.last_polled_at is not None  # the claim is committed before Alix Pay is asked
        if ipn_while_asking:
            # The order's row (on SQLite the database's write lock) is not held by the waiting poll.
            judged = await asyncio.wait_for(judge_ipn(parts, ipn), JUDGED_WITHIN)
            assert judged.verdict is Verdict.APPLIED and not poll.done()
    finally:
        slow.release.set()
        polled = await poll
    assert polled == 1
    (order,) = await rows(seeded, Order)
    assert order.status == "PAYMENT_COMPLETED"  # the answer, older than the IPN, never takes the order back
    events = await rows(seeded, OrderEvent)
    assert [event.detail for event in events if event.kind == "poll"] == [POLL_SAYS(status="AWAITING_PAYMENT")]
    flags = [event.detail for event in events if event.kind == "disagreement"]
    if ipn_while_asking:
        assert flags == []  # the order moved on while Alix Pay answered: an older answer is no disagreement
    else:
        assert flags == [POLL_BEHIND(status="AWAITING_PAYMENT", ours="PAYMENT_COMPLETED")]
