"""One item that raises never stops the others: every background job that handles items in a round, each tried
with one failing item among good ones (emails: tests/integration/test_emails.py)."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, post
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.builders import PARTNER_SECRETS
from tests.conftest import RsaKeys
from tests.integration.conftest import background_parts, both_databases, rows, seed_orders
from tests.integration.ipn_bodies import ipn_body
from tests.processes import free_port, serving
from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.errors import AlixPayOrderNotFound
from webapp.config import Settings
from webapp.db import make_engine, make_sessionmaker
from webapp.embed import webhooks
from webapp.embed.launch import delete_spent_tokens
from webapp.embed.models import LaunchTokenUse, WebhookAttempt, WebhookEvent
from webapp.embed.partners import PartnerSpec, save_partner
from webapp.ipn.models import IpnReceipt
from webapp.ipn.service import Delivery, RetryPolicy, delete_junk_receipts, process_pending, store_raw
from webapp.orders.models import Order, OrderEvent
from webapp.orders.reconcile import reconcile_once
from webapp.sessions import DatabaseStore, HttpSession


@pytest.fixture
async def sessionmaker(seeded: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(seeded.database.url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def where_this_file_raised(error: str) -> bool:
    return error.startswith(f"RuntimeError at {__name__.rsplit('.', 1)[1]}.py:")


@both_databases
async def test_partner_webhooks_deliver_the_others_and_record_the_one_that_raised(
    seeded: Settings, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[str] = []

    @post("/hooks", status_code=200)
    async def hooks(request: Request) -> None:
        received.append(json.loads(await request.body())["order"])

    port = free_port()
    async with sessionmaker() as session, session.begin():
        spec = PartnerSpec(
            slug="wallet",
            name="Wallet",
            origins=["https://wallet.example"],
            token_alg="HS256",
            webhook_url=f"http://127.0.0.1:{port}/hooks",
        )
        partner = await save_partner(session, spec, PARTNER_SECRETS)
        order_ids = [order.id for order in await session.exec(select(Order))]
        session.add_all(
            WebhookEvent(
                event_id=f"evt_{number}",
                partner_id=partner.id or 0,
                order_id=order_ids[0],
                type="order.completed",
                payload=json.dumps({"order": f"order-{number}"}),
            )
            for number in range(3)
        )
    sign = webhooks.webhook_signature

    def signs_all_but_one(secret: str, body: bytes, timestamp: int) -> str:
        if b"order-1" in body:
            raise RuntimeError("this event cannot be signed")
        return sign(secret, body, timestamp)

    monkeypatch.setattr(webhooks, "webhook_signature", signs_all_but_one)
    async with httpx.AsyncClient(timeout=5) as http, serving(Litestar(route_handlers=[hooks]), port):
        assert await webhooks.WebhookSender(sessionmaker, http, PARTNER_SECRETS).deliver_due() == 3
    assert sorted(received) == ["order-0", "order-2"]
    events = {event.event_id: event for event in await rows(seeded, WebhookEvent)}
    assert [events[f"evt_{number}"].state for number in range(3)] == ["delivered", "pending", "delivered"]
    failed = events["evt_1"]
    assert failed.attempts == 1 and failed.next_attempt_at is not None  # tried again after the backoff
    (attempt,) = [row for row in await rows(seeded, WebhookAttempt) if row.event_id == failed.id]
    assert attempt.status_code is None and where_this_file_raised(attempt.error)


async def test_reconciliation_polls_the_others_when_one_order_raises(
    seeded: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    external_ids = await seed_orders(seeded.database.url, "u2@example.com", 3)

    async def raises_for_one(_client: AlixPayClient, external_order_id: str) -> Any:
        if external_order_id == external_ids[1]:
            raise RuntimeError("this answer cannot be read")
        raise AlixPayOrderNotFound("unknown here", http_status=404)

    monkeypatch.setattr(AlixPayClient, "get_order", raises_for_one)
    async with background_parts(seeded) as (db, changes, alixpay):
        polled = await reconcile_once(db=db, changes=changes, alixpay=alixpay, silence=timedelta(0))
    assert polled == 4  # the seeded order and these three
    orders = {order.id: order.external_order_id for order in await rows(seeded, Order)}
    asked = {orders[event.order_id] for event in await rows(seeded, OrderEvent) if event.kind == "poll"}
    assert external_ids[1] not in asked and {external_ids[0], external_ids[2]} <= asked
    (left,) = [order for order in await rows(seeded, Order) if order.external_order_id == external_ids[1]]
    # Claimed before Alix Pay was asked (nothing is held while it answers): polled again once quiet, as after a
    # failed poll, with nothing of the answer that raised applied.
    assert left.last_polled_at is not None and left.status == "AWAITING_PAYMENT"


async def test_ipn_replay_judges_the_others_when_one_receipt_raises(
    seeded: Settings, rsa_keys: RsaKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    external_ids = await seed_orders(seeded.database.url, "u2@example.com", 3)
    verify = AlixPayClient.verify_ipn

    def raises_for_one(client: AlixPayClient, provider: Any) -> bool:
        if provider.external_order_id == external_ids[1]:
            raise RuntimeError("this receipt cannot be judged")
        return verify(client, provider)

    monkeypatch.setattr(AlixPayClient, "verify_ipn", raises_for_one)
    bodies = [ipn_body(seeded, rsa_keys.alix.private, order_id=external_id) for external_id in external_ids]
    async with background_parts(seeded) as (db, changes, alixpay):
        await store_raw(db, *(Delivery(body) for body in bodies))  # stored, then the process stopped
        assert (
            await process_pending(db=db, changes=changes, alixpay=alixpay, grace=timedelta(0), retry=RetryPolicy()) == 3
        )
    receipts = sorted(await rows(seeded, IpnReceipt), key=lambda receipt: receipt.id)
    assert [receipt.verdict for receipt in receipts] == ["applied", "error", "applied"]
    assert where_this_file_raised(receipts[1].last_error or "")
    statuses = {order.external_order_id: order.status for order in await rows(seeded, Order)}
    assert [statuses[external_id] for external_id in external_ids] == [
        "PAYMENT_COMPLETED",
        "AWAITING_PAYMENT",
        "PAYMENT_COMPLETED",
    ]


# The clean-up jobs delete in one statement by age alone: no row is read, so none can raise on its own. Each is tried
# with a row whose content nothing could read among ordinary ones: it goes with them, and nothing young goes.


async def test_the_session_clean_up_deletes_expired_rows_without_reading_them(
    seeded: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    table = HttpSession
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        await session.exec(  # type: ignore[call-overload]
            insert(table),
            params=[
                {"key": "unreadable", "data": b"\xff\x00 not a stored value", "expires_at": now - timedelta(hours=1)},
                {"key": "expired", "data": b'{"a": 1}', "expires_at": now - timedelta(seconds=1)},
                {"key": "alive", "data": b"\xff", "expires_at": now + timedelta(hours=1)},
                {"key": "forever", "data": b"{}", "expires_at": None},
            ],
        )
    engine = make_engine(seeded.database.url)
    try:
        assert len(await DatabaseStore(engine).delete_expired()) == 2
    finally:
        await engine.dispose()
    assert sorted(row.key for row in await rows(seeded, table)) == ["alive", "forever"]


async def test_ipn_retention_deletes_old_junk_whatever_its_body(seeded: Settings) -> None:
    now = datetime.now(UTC)
    async with background_parts(seeded) as (db, _, _):
        ids = await store_raw(db, Delivery(b"\xff\xfe not utf-8"), Delivery(b"{}"), Delivery(b"[1,"), Delivery(b"{ }"))
        async with db.sessionmaker() as session, session.begin():
            for receipt_id, verdict, age in zip(
                ids, ["malformed", "bad_signature", "applied", "malformed"], [40, 40, 40, 1], strict=True
            ):
                receipt = await session.get(IpnReceipt, receipt_id)
                receipt.verdict, receipt.received_at = verdict, now - timedelta(days=age)
        assert await delete_junk_receipts(db, older_than=timedelta(days=30)) == 2
    assert sorted(receipt.id for receipt in await rows(seeded, IpnReceipt)) == ids[2:]  # applied, and young junk


async def test_launch_token_clean_up_deletes_every_expired_token(
    seeded: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        spec = PartnerSpec(slug="wallet", name="Wallet", origins=["https://wallet.example"], token_alg="HS256")
        partner_id = (await save_partner(session, spec, PARTNER_SECRETS)).id or 0
        session.add_all(
            LaunchTokenUse(partner_id=partner_id, jti=jti, expires_at=now + timedelta(minutes=minutes))
            for jti, minutes in [("\x00\ufffd odd", -5), (str(uuid.uuid4()), -1), ("young", 5)]
        )
    assert await delete_spent_tokens(sessionmaker) == 2
    assert [token.jti for token in await rows(seeded, LaunchTokenUse)] == ["young"]
