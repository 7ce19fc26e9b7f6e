"""The fault matrix rows not covered elsewhere (docs/RELIABILITY.md lists every row and its test).

Each row checks the final status, that nothing received is lost, that no order is created twice, what the
person's page says and what support sees.
"""

from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from tests.conftest import RsaKeys
from tests.integration.conftest import (
    POSTGRES_ADMIN_DSN,
    LiveApp,
    both_databases,
    live_settings,
    rows,
    serving_live_app,
)
from tests.integration.flow import Db, place_order, signed_in_client
from tests.integration.ipn_bodies import ipn_body
from tests.oidc_support import Idp
from tests.processes import SandboxServer, async_wait_for
from webapp.app import create_app
from webapp.config import Settings
from webapp.ipn.models import IpnReceipt
from webapp.orders.models import Order, OrderEvent, OrderTransition


async def post(settings: Settings, body: bytes, content_type: str = "application/json") -> int:
    async with AsyncTestClient(app=create_app(settings)) as client:
        answer = await client.post("/ipn/alixpay", content=body, headers={"content-type": content_type})
    return answer.status_code


@both_databases
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_an_ipn_is_judged_by_its_signed_body_whatever_its_content_type(
    seeded: Settings,
    rsa_keys: RsaKeys,
    content_type: str,
) -> None:
    assert await post(seeded, ipn_body(seeded, rsa_keys.alix.private), content_type) == 200
    (receipt,) = await rows(seeded, IpnReceipt)
    assert receipt.verdict == "applied" and receipt.headers.get("content-type", "") == content_type
    (order,) = await rows(seeded, Order)
    assert order.status == "PAYMENT_COMPLETED"


@both_databases
async def test_a_replay_after_the_final_status_changes_nothing(seeded: Settings, rsa_keys: RsaKeys) -> None:
    key = rsa_keys.alix.private
    for status, answer in (("SUCCESS", 200), ("PAYMENT_COMPLETED", 200), ("AWAITING_PAYMENT", 200), ("SUCCESS", 200)):
        assert await post(seeded, ipn_body(seeded, key, status=status)) == answer
    assert [r.verdict for r in await rows(seeded, IpnReceipt)] == ["applied", "stale", "stale", "duplicate"]
    assert [t.to_status for t in await rows(seeded, OrderTransition)] == ["SUCCESS"]


@both_databases
async def test_during_a_key_rotation_both_keys_are_trusted_and_no_other(seeded: Settings, rsa_keys: RsaKeys) -> None:
    both = seeded.alixpay.model_copy(update={"public_key_files": [rsa_keys.alix.public, rsa_keys.other.public]})
    settings = seeded.model_copy(update={"alixpay": both})
    assert await post(settings, ipn_body(settings, rsa_keys.alix.private, status="PAYMENT_COMPLETED")) == 200
    assert await post(settings, ipn_body(settings, rsa_keys.partner.private, status="SUCCESS")) == 400  # a stranger
    assert await post(settings, ipn_body(settings, rsa_keys.other.private, status="SUCCESS")) == 200  # the new key
    verdicts = [r.verdict for r in await rows(settings, IpnReceipt)]
    assert verdicts == ["applied", "bad_signature", "applied"]
    assert [t.to_status for t in await rows(settings, OrderTransition)] == ["PAYMENT_COMPLETED", "SUCCESS"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_database_outage_during_an_ipn_loses_nothing_once_alix_pay_retries(
    seeded: Settings,
    rsa_keys: RsaKeys,
    database_url: str,
) -> None:
    """The receiver answers 500 while the database is unreachable; Alix Pay's next delivery is applied once."""
    # PostgreSQL only: SQLite is a file beside the app, it cannot be unreachable while the app runs.
    name = make_url(database_url).database
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    body = ipn_body(seeded, rsa_keys.alix.private)
    try:
        async with AsyncTestClient(app=create_app(seeded)) as client:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            down = await client.post("/ipn/alixpay", content=body, headers={"content-type": "application/json"})
            assert down.status_code == 500 and "Traceback" not in down.text  # Alix Pay will deliver it again
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            answers = []
            for _ in range(5):  # Alix Pay's retries; a pooled connection the outage killed may fail once more
                answers.append(
                    (
                        await client.post("/ipn/alixpay", content=body, headers={"content-type": "application/json"})
                    ).status_code
                )
                if answers[-1] == 200:
                    break
            assert answers[-1] == 200, answers
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert [r.verdict for r in await rows(seeded, IpnReceipt)] == ["applied"]
    assert [t.to_status for t in await rows(seeded, OrderTransition)] == ["PAYMENT_COMPLETED"]


@pytest.fixture
async def down_app(
    database_url: str, rsa_keys: RsaKeys, app_port: int, app_sandbox: SandboxServer, idp: Idp
) -> AsyncIterator[LiveApp]:
    """The live app with Alix Pay unreachable (nothing listens where it points)."""
    settings = live_settings(
        port=app_port,
        database_url=database_url,
        sandbox=app_sandbox,
        rsa_keys=rsa_keys,
        idp=idp,
        base_url="http://127.0.0.1:9",
    )
    async with serving_live_app(settings, app_port, app_sandbox) as app:
        yield app


async def test_alix_pay_down_leaves_one_order_waiting_to_be_confirmed(down_app: LiveApp) -> None:
    client = await signed_in_client(down_app)
    order_id = await place_order(client)
    db = Db(down_app)
    try:
        order = await db.order(order_id)
        events = await async_wait_for(lambda: _polls(db, order), what="a failed status check")
    finally:
        await db.close()
    assert order.status == "UNKNOWN"
    page = await client.get(f"/orders/{order_id}")
    assert "We're confirming your order with Alix Pay" in page.text and "do not place the order again" in page.text
    assert any("poll failed" in event.detail for event in events)  # support's timeline shows each try
    again = await client.get("/orders/new")
    assert again.status_code == 200  # the person can go on; nothing was created twice (one row, one id)


async def _polls(db: Db, order: Order) -> list[OrderEvent] | None:
    events = await db.events(order)
    return events if any(event.kind == "poll" for event in events) else None


@pytest.mark.parametrize(
    ("faults", "what"),
    [
        ({"create_response": "error_500"}, "a 500 after creating it"),
        ({"create_response": "hang", "hang_seconds": 0.8}, "a slow answer within the timeout"),
    ],
)
async def test_an_answer_that_errs_or_is_slow_still_gives_one_order_that_completes(
    live_app: LiveApp, db: Db, faults: dict[str, object], what: str
) -> None:
    live_app.sandbox.set_faults(**faults)
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    order = await db.final(order_id, "SUCCESS")
    orders = [o for o in live_app.sandbox.admin("GET", "/admin/orders") if o["externalOrderId"] == order_id]
    assert len(orders) == 1, what
    assert [to for _, to, _ in await db.transitions(order)][-1] == "SUCCESS"
    assert "Done — the money has been paid out" in (await client.get(f"/orders/{order_id}")).text


async def test_details_down_during_reconciliation_is_tried_again_until_it_answers(live_app: LiveApp, db: Db) -> None:
    live_app.sandbox.set_faults(drop=True, details_response="error_500")  # no IPN, and the status call fails
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    order = await db.order(order_id)
    events = await async_wait_for(lambda: _polls(db, order), what="a failed status check", timeout=30)
    assert any("poll failed" in event.detail for event in events)
    assert (await db.order(order_id)).status == "AWAITING_PAYMENT"  # nothing guessed while Alix Pay is silent
    live_app.sandbox.admin("PUT", f"/admin/orders/{order_id}/faults", json={"drop": True})
    final = await db.final(order_id, "SUCCESS", timeout=40)
    assert {source for *_, source in await db.transitions(final)} <= {"create", "poll"}
    assert "Done — the money has been paid out" in (await client.get(f"/orders/{order_id}")).text
