"""The IPN receiver on its own: raw first, verify, then apply; bad input is stored, answered clearly, never applied."""

import json
from datetime import UTC, datetime

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import select

from tests.conftest import RsaKeys, create_schema
from tests.integration.conftest import both_databases
from tests.support import async_wait_for
from webapp.alixpay import signing
from webapp.alixpay.crypto import Signer
from webapp.app import create_app
from webapp.config import DatabaseSettings, Settings
from webapp.db import make_engine, make_sessionmaker
from webapp.ipn.models import IpnReceipt
from webapp.ipn.service import store_raw
from webapp.orders.models import Order, OrderTransition

EXTERNAL_ID = "5b0c1d2e-0000-4000-8000-000000000001"


def ipn_body(settings: Settings, key_file, *, status: str = "PAYMENT_COMPLETED", order_id: str = EXTERNAL_ID) -> bytes:
    order = {"externalOrderId": order_id, "type": "CASH_OUT", "fiatAmount": 100000, "status": status}
    text = signing.order_string(
        external_order_id=order_id,
        order_type="CASH_OUT",
        fiat_amount=100000,
        status=status,
        secret_key=settings.alixpay.secret_key.get_secret_value(),
    )
    return json.dumps({**order, "signature": Signer.from_file(key_file).sign(text)}).encode()


async def seed_order(settings: Settings) -> None:
    engine = make_engine(settings.database.url)
    async with make_sessionmaker(engine)() as session, session.begin():
        from webapp.auth.models import User

        user = User(issuer="https://idp", subject="u1", email="u1@example.com")
        session.add(user)
        await session.flush()
        session.add(
            Order(
                external_order_id=EXTERNAL_ID,
                submission_id="s1",
                user_id=user.id,
                user_email=user.email,
                status="AWAITING_PAYMENT",
                fiat_amount=100000,
                bank_bin="970407",
                bank_code="TECHCOMBANK",
                bank_name="Techcombank",
                account_number="19030413601018",
                recipient_name="NGUYEN VAN ANH",
                transfer_content="RUT TIEN ABCDEFGH",
            )
        )
    await engine.dispose()


async def rows(settings: Settings, model: type) -> list:
    engine = make_engine(settings.database.url)
    async with make_sessionmaker(engine)() as session:
        result = list((await session.exec(select(model))).all())
    await engine.dispose()
    return result


pytestmark = both_databases


@pytest.fixture
async def seeded(settings: Settings, database_url: str) -> Settings:
    settings = settings.model_copy(update={"database": DatabaseSettings(url=database_url)})
    await create_schema(settings.database.url)
    await seed_order(settings)
    return settings


async def post_ipn(settings: Settings, body: bytes) -> tuple[int, dict]:
    async with AsyncTestClient(app=create_app(settings)) as client:
        answer = await client.post("/ipn/alixpay", content=body, headers={"content-type": "application/json"})
    return answer.status_code, answer.json()


async def test_valid_ipn_is_applied_without_session_or_csrf(seeded: Settings, rsa_keys: RsaKeys) -> None:
    status, answer = await post_ipn(seeded, ipn_body(seeded, rsa_keys.alix.private))
    assert (status, answer) == (200, {"verdict": "applied"})
    (order,) = await rows(seeded, Order)
    assert order.status == "PAYMENT_COMPLETED"
    (transition,) = await rows(seeded, OrderTransition)
    (receipt,) = await rows(seeded, IpnReceipt)
    assert (transition.source, transition.receipt_id) == ("ipn", receipt.id)
    assert receipt.body == ipn_body(seeded, rsa_keys.alix.private)  # stored exactly as received
    assert receipt.source_address and receipt.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("make_body", "status", "verdict"),
    [
        (lambda s, k: b"{not json", 400, "malformed"),
        (lambda s, k: json.dumps({"status": "SUCCESS"}).encode(), 400, "malformed"),
        (lambda s, k: ipn_body(s, k.other.private), 400, "bad_signature"),
        (lambda s, k: ipn_body(s, k.alix.private).replace(b"PAYMENT_COMPLETED", b"SUCCESS"), 400, "bad_signature"),
        (
            lambda s, k: ipn_body(s, k.alix.private, order_id="11111111-2222-3333-4444-555555555555"),
            404,
            "unknown_order",
        ),
        (lambda s, k: ipn_body(s, k.alix.private, status="REFUNDED"), 200, "unknown_status"),
        (lambda s, k: ipn_body(s, k.alix.private, status="AWAITING_PAYMENT"), 200, "duplicate"),
    ],
    ids=["not_json", "not_an_order", "other_key", "tampered", "unknown_order", "unknown_status", "same_status"],
)
async def test_bad_or_useless_ipn_is_stored_and_changes_nothing(
    seeded: Settings,
    rsa_keys: RsaKeys,
    make_body,
    status: int,
    verdict: str,
) -> None:
    body = make_body(seeded, rsa_keys)
    assert await post_ipn(seeded, body) == (status, {"verdict": verdict})
    (order,) = await rows(seeded, Order)
    assert order.status == "AWAITING_PAYMENT"
    assert await rows(seeded, OrderTransition) == []
    (receipt,) = await rows(seeded, IpnReceipt)
    assert (receipt.body, receipt.verdict) == (body, verdict)
    if verdict == "unknown_status":
        assert order.provider_status == "REFUNDED"  # stored as received, not applied


async def test_oversized_ipn_is_refused_with_413_and_still_logged(seeded: Settings) -> None:
    body = b'{"pad": "' + b"x" * (seeded.ipn_max_body_bytes + 10) + b'"}'
    assert await post_ipn(seeded, body) == (413, {"verdict": "too_large"})
    (receipt,) = await rows(seeded, IpnReceipt)
    assert receipt.verdict == "too_large" and receipt.body_size == seeded.ipn_max_body_bytes


async def test_same_ipn_twice_is_a_duplicate(seeded: Settings, rsa_keys: RsaKeys) -> None:
    body = ipn_body(seeded, rsa_keys.alix.private, status="SUCCESS")
    assert await post_ipn(seeded, body) == (200, {"verdict": "applied"})
    assert await post_ipn(seeded, body) == (200, {"verdict": "duplicate"})
    assert len(await rows(seeded, OrderTransition)) == 1


async def test_receipt_stored_before_a_crash_is_processed_at_start_up(seeded: Settings, rsa_keys: RsaKeys) -> None:
    engine = make_engine(seeded.database.url)
    await store_raw(
        make_sessionmaker(engine), body=ipn_body(seeded, rsa_keys.alix.private), headers={}, source_address="10.0.0.1"
    )
    await engine.dispose()
    (pending,) = await rows(seeded, IpnReceipt)
    assert pending.verdict is None
    async with AsyncTestClient(app=create_app(seeded.model_copy(update={"ipn_replay_grace_seconds": 0}))):
        await async_wait_for(lambda: _processed(seeded), what="the pending receipt to be processed", timeout=10)
    (receipt,) = await rows(seeded, IpnReceipt)
    assert receipt.verdict == "applied" and receipt.processed_at <= datetime.now(UTC)
    assert (await rows(seeded, Order))[0].status == "PAYMENT_COMPLETED"


async def _processed(settings: Settings) -> bool:
    return all(receipt.verdict for receipt in await rows(settings, IpnReceipt))
