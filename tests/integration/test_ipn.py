"""The IPN receiver on its own: raw first, verify, then apply; bad input is stored, answered clearly, never applied."""

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from tests.builders import http_scope
from tests.conftest import RsaKeys
from tests.integration.conftest import background_parts, both_databases, rows
from tests.integration.ipn_bodies import HOSTILE, ipn_body
from tests.processes import async_wait_for
from webapp.alixpay.client import AlixPayClient
from webapp.app import create_app
from webapp.auth.session import CurrentUser
from webapp.config import Settings
from webapp.db import Database, autocommit, make_engine
from webapp.ipn.models import IpnReceipt
from webapp.ipn.service import Delivery, RetryPolicy, delete_junk_receipts, process_pending, store_raw
from webapp.jobs import Job, JobHealth, running
from webapp.orders.models import Order, OrderEvent, OrderTransition
from webapp.orders.routes import status_context
from webapp.orders.storage import own_order_history
from webapp.orders.transitions import StatusChanges
from webapp.rendering import render_fragment
from webapp.templating import make_environment

pytestmark = both_databases


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


async def test_the_answer_is_json_with_the_app_s_headers_and_only_post_is_answered(
    seeded: Settings, rsa_keys: RsaKeys
) -> None:
    async with AsyncTestClient(app=create_app(seeded)) as client:
        answer = await client.post("/ipn/alixpay", content=ipn_body(seeded, rsa_keys.alix.private))
        refused = [await client.request(method, "/ipn/alixpay") for method in ("GET", "PUT", "DELETE")]
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-length"] == str(len(answer.content)) and answer.json() == {"verdict": "applied"}
    assert answer.headers["x-request-id"] and answer.headers["x-content-type-options"] == "nosniff"
    assert [(refusal.status_code, refusal.headers.get("allow")) for refusal in refused] == [(405, "POST")] * 3
    assert len(await rows(seeded, IpnReceipt)) == 1


async def test_a_delivery_cut_short_is_neither_stored_nor_answered(seeded: Settings, rsa_keys: RsaKeys) -> None:
    app = create_app(seeded)
    body = ipn_body(seeded, rsa_keys.alix.private)
    messages = iter([{"type": "http.request", "body": body[:40], "more_body": True}, {"type": "http.disconnect"}])
    sent: list[dict] = []

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = http_scope("POST", "/ipn/alixpay", [(b"content-length", str(len(body)).encode())])
    async with app.lifespan():
        await app(scope, receive, send)  # type: ignore[arg-type]  (plain dicts for its messages)
    assert sent == []
    assert await rows(seeded, IpnReceipt) == []


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
    db = Database.connect(seeded.database.url)
    await store_raw(db, Delivery(ipn_body(seeded, rsa_keys.alix.private), source_address="10.0.0.1"))
    await db.close()
    (pending,) = await rows(seeded, IpnReceipt)
    assert pending.verdict is None
    async with AsyncTestClient(app=create_app(seeded.model_copy(update={"ipn_replay_grace_seconds": 0}))):
        await async_wait_for(lambda: _processed(seeded), what="the pending receipt to be processed", timeout=10)
    (receipt,) = await rows(seeded, IpnReceipt)
    assert receipt.verdict == "applied" and receipt.processed_at <= datetime.now(UTC)
    assert (await rows(seeded, Order))[0].status == "PAYMENT_COMPLETED"


async def _processed(settings: Settings) -> bool:
    return all(receipt.verdict for receipt in await rows(settings, IpnReceipt))


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_ipn_is_answered_fast_gets_a_verdict_and_changes_nothing(seeded: Settings, body: bytes) -> None:
    async with AsyncTestClient(app=create_app(seeded)) as client:
        # Connections, prepared statements and caches warm (a plain unreadable body), so the clock below times
        # what this body costs.
        assert (await client.post("/ipn/alixpay", content=b"{}")).json() == {"verdict": "malformed"}
        started = time.perf_counter()
        answer = await client.post("/ipn/alixpay", content=body, headers={"content-type": "application/json"})
        elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"answered in {elapsed:.2f} s"
    assert (answer.status_code, answer.json()) == (400, {"verdict": "malformed"})
    receipts = {receipt.body: receipt.verdict for receipt in await rows(seeded, IpnReceipt)}
    assert receipts == {b"{}": "malformed", body: "malformed"}
    assert [order.status for order in await rows(seeded, Order)] == ["AWAITING_PAYMENT"]
    assert await rows(seeded, OrderTransition) == []


async def test_signed_ipn_with_a_hostile_unsigned_field_is_malformed_fast(seeded: Settings, rsa_keys: RsaKeys) -> None:
    """The signature covers four fields; a replayed body can carry anything in the others."""
    body = ipn_body(seeded, rsa_keys.alix.private, tokenTransfer={"price": "1e1000000", "amount": 1})
    started = time.perf_counter()
    assert await post_ipn(seeded, body) == (400, {"verdict": "malformed"})
    assert time.perf_counter() - started < 2.0
    assert [order.status for order in await rows(seeded, Order)] == ["AWAITING_PAYMENT"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"fiat_amount": 1}, "fiatAmount 1 is not the order's 100000"),
        ({"order_type": "REFUND"}, "type 'REFUND'"),
        ({"tokenTransfer": {"currency": "BTC"}}, "tokenTransfer.currency 'BTC'"),
        ({"fiatCurrency": "USD"}, "fiatCurrency 'USD'"),
    ],
    ids=["amount", "type", "token_currency", "fiat_currency"],
)
async def test_signed_ipn_that_disagrees_with_the_order_is_stored_flagged_and_not_applied(
    seeded: Settings, rsa_keys: RsaKeys, change: dict, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = ipn_body(seeded, rsa_keys.alix.private, status="SUCCESS", **change)
    with caplog.at_level(logging.WARNING, logger="webapp.orders.transitions"):
        assert await post_ipn(seeded, body) == (200, {"verdict": "mismatch"})
    (order,) = await rows(seeded, Order)
    assert order.status == "AWAITING_PAYMENT" and order.provider_status is None
    assert await rows(seeded, OrderTransition) == []
    (receipt,) = await rows(seeded, IpnReceipt)
    (event,) = await rows(seeded, OrderEvent)
    assert (event.kind, event.source, event.receipt_id, event.order_id) == ("mismatch", "ipn", receipt.id, order.id)
    assert reason in event.detail
    assert any(record.levelname == "WARNING" and reason in record.getMessage() for record in caplog.records)
    page = await order_status_html(seeded, order)
    assert "does not match it, so it was not applied" in page
    assert "Done — the money has been paid out" not in page
    assert 'hx-trigger="every 10s"' in page  # the page as first served polls, in case no live stream can open


async def order_status_html(settings: Settings, order: Order) -> str:
    """The order's status fragment as its owner's page and live stream show it."""
    engine = make_engine(settings.database.url)
    owner = CurrentUser(id=order.user_id, email=order.user_email, roles=frozenset(), signed_in_at=time.time())
    history = await own_order_history(autocommit(engine), order.external_order_id, owner)
    await engine.dispose()
    assert history is not None
    context = status_context(history)
    return render_fragment(
        make_environment(), "orders/_status.html", locale="en", url_for=lambda *_, **__: "/", **context
    )


async def test_a_receipt_whose_judging_raises_is_recorded_retried_with_backoff_then_parked(
    seeded: Settings, rsa_keys: RsaKeys, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = seeded.model_copy(update={"ipn_max_attempts": 3, "ipn_retry_base_seconds": 0.0})
    secret = "do-not-log-me"

    def explode(_client: AlixPayClient, _order: object) -> bool:
        raise RuntimeError(secret)

    monkeypatch.setattr(AlixPayClient, "verify_ipn", explode)
    body = ipn_body(settings, rsa_keys.alix.private, status="SUCCESS", description=secret)
    with caplog.at_level(logging.DEBUG, logger="webapp"):
        assert await post_ipn(settings, body) == (500, {"verdict": "error"})
        (receipt,) = await rows(settings, IpnReceipt)
        assert (receipt.verdict, receipt.attempts) == ("error", 1)
        assert receipt.last_error.startswith("RuntimeError at test_ipn.py:")
        async with background_parts(settings) as (db, changes, alixpay):
            await retry_until_parked_then_heal(settings, db, changes, alixpay, monkeypatch, rsa_keys)
    receipts = await rows(settings, IpnReceipt)
    assert [(r.verdict, r.attempts) for r in receipts] == [("parked", 3), ("applied", 1)]
    assert (await rows(settings, Order))[0].status == "PAYMENT_COMPLETED"
    assert "RuntimeError" in caplog.text and secret not in caplog.text


async def retry_until_parked_then_heal(
    settings: Settings,
    db: Database,
    changes: StatusChanges,
    alixpay: AlixPayClient,
    monkeypatch: pytest.MonkeyPatch,
    rsa_keys: RsaKeys,
) -> None:
    """Two more failed tries park the first receipt; a second one heals when the fault is gone."""
    retry = RetryPolicy.of(settings)
    assert await process_pending(db=db, changes=changes, alixpay=alixpay, grace=timedelta(0), retry=retry) == 1
    assert await process_pending(db=db, changes=changes, alixpay=alixpay, grace=timedelta(0), retry=retry) == 1
    (receipt,) = await rows(settings, IpnReceipt)
    assert (receipt.verdict, receipt.attempts) == ("parked", 3)
    assert await process_pending(db=db, changes=changes, alixpay=alixpay, grace=timedelta(0), retry=retry) == 0
    # A receipt that failed once is applied on its next try once the fault is gone.
    second = ipn_body(settings, rsa_keys.alix.private, status="PAYMENT_COMPLETED")
    assert await post_ipn(settings, second) == (500, {"verdict": "error"})
    monkeypatch.undo()
    assert await process_pending(db=db, changes=changes, alixpay=alixpay, grace=timedelta(0), retry=retry) == 1


async def test_a_failing_or_hanging_job_does_not_stop_receipt_replay(seeded: Settings, rsa_keys: RsaKeys) -> None:
    async with background_parts(seeded) as (db, changes, alixpay):
        await run_beside_broken_jobs(seeded, db, changes, alixpay, rsa_keys)
    assert [receipt.verdict for receipt in await rows(seeded, IpnReceipt)] == ["applied"]


async def run_beside_broken_jobs(
    seeded: Settings, db: Database, changes: StatusChanges, alixpay: AlixPayClient, rsa_keys: RsaKeys
) -> None:
    await store_raw(db, Delivery(ipn_body(seeded, rsa_keys.alix.private)))
    rounds = {"fails": 0}

    async def always_fails() -> int:
        rounds["fails"] += 1
        raise RuntimeError("this job is broken")

    async def hangs() -> int:
        await asyncio.Event().wait()
        return 0

    async def replay() -> int:
        return await process_pending(
            db=db, changes=changes, alixpay=alixpay, grace=timedelta(0), retry=RetryPolicy.of(seeded)
        )

    jobs = [Job("always-fails", 0.001, always_fails), Job("hangs", 0.01, hangs), Job("ipn-replay", 0.05, replay)]
    health = JobHealth()
    async with running(jobs, health, grace=0.2) as tasks:  # then the hanging round is cancelled
        await async_wait_for(lambda: _processed(seeded), what="the replay job to apply the receipt", timeout=10)
        await async_wait_for(lambda: asyncio.sleep(0, rounds["fails"] >= 3), what="the broken job to keep trying")
        assert not any(task.done() for task in tasks)
    assert (
        health.jobs["always-fails"].failures_in_a_row >= 3 and health.jobs["always-fails"].last_error == "RuntimeError"
    )
    assert health.jobs["ipn-replay"].failures_in_a_row == 0 and "hangs" not in health.jobs  # still in its first round


async def test_junk_receipts_are_deleted_after_retention_and_the_rest_kept(seeded: Settings, rsa_keys: RsaKeys) -> None:
    for body in (b"{junk", ipn_body(seeded, rsa_keys.other.private), ipn_body(seeded, rsa_keys.alix.private)):
        await post_ipn(seeded, body)
    async with background_parts(seeded) as (db, _, _):
        assert await delete_junk_receipts(db, older_than=timedelta(days=30)) == 0
        assert await delete_junk_receipts(db, older_than=timedelta(seconds=-1)) == 2
    assert [receipt.verdict for receipt in await rows(seeded, IpnReceipt)] == ["applied"]
