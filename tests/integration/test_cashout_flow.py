"""The cash-out end to end over real HTTP: real IdP sign-in, the app as a server, the sandbox and its IPNs."""

import asyncio
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from tests.conftest import RsaKeys
from tests.integration.conftest import LiveApp, both_databases
from tests.integration.flow import FORM, HAPPY, Db, confirm, place_order, review, signed_in_client
from tests.integration.ipn_bodies import HOSTILE, ipn_body
from tests.processes import async_wait_for
from webapp.activity.figures import activity
from webapp.db import Database
from webapp.ipn.models import IpnReceipt
from webapp.ipn.service import Delivery, store_raw
from webapp.orders.models import Order, OrderTransition

pytestmark = both_databases  # every flow, on SQLite and on PostgreSQL


def sandbox_orders(app: LiveApp, external_order_id: str) -> list[dict[str, Any]]:
    return [o for o in app.sandbox.admin("GET", "/admin/orders") if o["externalOrderId"] == external_order_id]


def statuses_reached(transitions: list[tuple[str, str, str]]) -> list[str]:
    return [to for _, to, _ in transitions]


async def test_cashout_walks_to_success_and_the_page_follows_live(live_app: LiveApp, db: Db) -> None:
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    events = []
    async with client.stream("GET", f"/orders/{order_id}/events", timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            events.append(line)
            if line == "event: done":
                break
    order = await db.final(order_id, "SUCCESS")
    assert (order.user_email, order.fiat_amount, order.recipient_name) == (
        "user@example.com",
        100_000,
        "NGUYEN VAN ANH",
    )
    assert order.bank_code == "TECHCOMBANK" and order.account_number == "19030413601018"
    transitions = await db.transitions(order)
    assert statuses_reached(transitions) == HAPPY
    assert transitions[0][0] == "CREATING"
    assert {source for *_, source in transitions[1:]} <= {"ipn", "poll"}
    verdicts = [receipt.verdict for receipt in await db.receipts(order_id)]
    assert verdicts.count("applied") + [s for *_, s in transitions].count("create") >= 4
    assert set(verdicts) <= {"applied", "duplicate"}
    assert all("date" in receipt.headers for receipt in await db.receipts(order_id))  # Alix Pay's send time, kept
    async with db.sessionmaker() as session:
        seen = await activity(session, zone=ZoneInfo("UTC"))
    by_ipn = [source for *_, source in transitions].count("ipn")
    assert sum(map(sum, seen.ipn_delays.counts)) == by_ipn and seen.undated_ipns == 0  # each IPN's delay counted
    if by_ipn:
        assert 0 <= (seen.ipn_delays.overall(0.5) or 0) <= 3  # the sandbox sends at once, on this machine
    status_events = [line for line in events if line.startswith("data: ") and "order-status" in line]
    assert status_events, events
    assert not any("hx-trigger" in line for line in events)  # the live stream brings changes: no polling beside it
    page = "\n".join(events)
    assert "Done — the money has been paid out" in page
    assert len(sandbox_orders(live_app, order_id)) == 1


@pytest.mark.parametrize(
    ("overrides", "final"), [({"account_number": "1234560000"}, "FAIL"), ({"amount": "66666"}, "ERROR")]
)
async def test_fail_and_error_paths(live_app: LiveApp, db: Db, overrides: dict[str, str], final: str) -> None:
    client = await signed_in_client(live_app)
    order_id = await place_order(client, **overrides)
    order = await db.final(order_id, final)
    assert statuses_reached(await db.transitions(order)) == ["AWAITING_PAYMENT", final]
    page = await client.get(f"/orders/{order_id}")
    assert "The payout failed" in page.text or "stopped because of an error" in page.text


async def test_each_ipn_delivered_five_times_is_applied_once(live_app: LiveApp, db: Db) -> None:
    live_app.sandbox.set_faults(duplicate=5)
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    order = await db.final(order_id, "SUCCESS")
    receipts = await async_wait_for(lambda: _receipts_at_least(db, order_id, 20), what="all 20 deliveries", timeout=20)
    verdicts = [receipt.verdict for receipt in receipts]
    assert len(verdicts) == 20
    assert verdicts.count("applied") in (3, 4)  # AWAITING_PAYMENT may have been applied by the create answer
    assert verdicts.count("duplicate") == 20 - verdicts.count("applied")
    assert statuses_reached(await db.transitions(order)) == HAPPY


async def _receipts_at_least(db: Db, order_id: str, count: int) -> list[IpnReceipt] | None:
    receipts = await db.receipts(order_id)
    return receipts if len(receipts) >= count and all(r.verdict for r in receipts) else None


async def test_ipns_in_reverse_order_never_move_status_backwards(live_app: LiveApp, db: Db) -> None:
    live_app.sandbox.set_faults(out_of_order=True)
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    order = await db.final(order_id, "SUCCESS")
    receipts = await async_wait_for(lambda: _receipts_at_least(db, order_id, 4), what="4 receipts")
    assert [r.provider_status for r in receipts] == list(reversed(HAPPY))
    assert [r.verdict for r in receipts] == ["applied", "stale", "stale", "duplicate"] or [
        r.verdict for r in receipts
    ] == ["applied", "stale", "stale", "stale"]
    transitions = await db.transitions(order)
    assert statuses_reached(transitions)[-1] == "SUCCESS"
    assert all(HAPPY.index(b) > HAPPY.index(a) for (_, a, _), (_, b, _) in itertools.pairwise(transitions[1:]))


@pytest.mark.parametrize("fault", ["corrupt_signature", "wrong_key"])
async def test_badly_signed_ipns_are_stored_never_applied_and_the_poll_finishes_the_order(
    live_app: LiveApp, db: Db, fault: str
) -> None:
    live_app.sandbox.set_faults(**{fault: True})
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    order = await db.final(order_id, "SUCCESS", timeout=40)
    receipts = await db.receipts(order_id)
    assert receipts and {r.verdict for r in receipts} == {"bad_signature"}
    transitions = await db.transitions(order)
    assert [source for *_, source in transitions] == ["create"] + ["poll"] * (len(transitions) - 1)
    attempts = live_app.sandbox.order(order_id)["deliveries"][0]["attempts"]
    assert {a["httpStatus"] for a in attempts} == {400}  # refused, so Alix Pay retried


async def test_dropped_ipns_are_found_by_reconciliation(live_app: LiveApp, db: Db) -> None:
    live_app.sandbox.set_faults(drop=True)
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    order = await db.final(order_id, "SUCCESS", timeout=40)
    assert await db.receipts(order_id) == []
    async with db.sessionmaker() as session:
        notes = (await session.exec(select(OrderTransition.note).where(OrderTransition.order_id == order.id))).all()
    assert any("no IPN had said so" in note for note in notes)
    disagreements = [event for event in await db.events(order) if event.kind == "disagreement"]
    assert disagreements and all(event.source == "poll" for event in disagreements)  # support's filter finds it


async def test_timeout_after_create_is_resolved_without_a_second_order(live_app: LiveApp, db: Db) -> None:
    live_app.sandbox.set_faults(create_response="hang", hang_seconds=4, drop=True)
    client = await signed_in_client(live_app)
    order_id = await place_order(client)  # the create timed out; the details call found the order at once
    order = await db.order(order_id)
    first = (await db.transitions(order))[0]
    assert first[0::2] == ("CREATING", "create") and first[1] in HAPPY  # never UNKNOWN: resolved straight away
    order = await db.final(order_id, "SUCCESS", timeout=40)  # IPNs dropped: the reconciler finishes it
    assert len(sandbox_orders(live_app, order_id)) == 1
    history = live_app.sandbox.order(order_id)["history"]
    assert [event["reason"] for event in history].count("created") == 1


async def test_unknown_outcome_waits_for_the_reconciler_and_is_never_created_twice(live_app: LiveApp, db: Db) -> None:
    live_app.sandbox.set_faults(answer_signature="corrupt", drop=True)  # no answer can be trusted, no IPN comes
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    order = await db.order(order_id)
    assert (order.status, await db.transitions(order)) == ("UNKNOWN", [("CREATING", "UNKNOWN", "create")])
    page = await client.get(f"/orders/{order_id}")
    assert "We're confirming your order with Alix Pay" in page.text
    live_app.sandbox.set_faults()  # Alix Pay's answers can be verified again
    live_app.sandbox.admin("PUT", f"/admin/orders/{order_id}/faults", json={"drop": True})
    order = await db.final(order_id, "SUCCESS", timeout=40)
    assert statuses_reached(await db.transitions(order))[0] == "UNKNOWN"
    assert {source for *_, source in (await db.transitions(order))[1:]} == {"poll"}
    assert len(sandbox_orders(live_app, order_id)) == 1


async def test_double_submit_makes_one_order(live_app: LiveApp, db: Db) -> None:
    client = await signed_in_client(live_app)
    page = await review(client)
    first, second = await asyncio.gather(confirm(client, page), confirm(client, page))
    assert first.headers["location"] == second.headers["location"]
    again = await confirm(client, page)  # the form posted once more, later
    assert again.headers["location"] == first.headers["location"]
    order_id = first.headers["location"].rsplit("/", 1)[1]
    async with db.sessionmaker() as session:
        assert len((await session.exec(select(Order))).all()) == 1
    assert len(sandbox_orders(live_app, order_id)) == 1


@pytest.mark.parametrize(
    ("lang", "message"),
    [("en", "at least 50,000 VND"), ("vi", "tối thiểu 50,000 VND"), ("zh", "不少于 50,000 越南盾")],
)
async def test_alix_pay_rejection_shows_its_message_and_the_form_again(
    live_app: LiveApp, db: Db, lang: str, message: str
) -> None:
    client = await signed_in_client(live_app, lang=lang)
    page = await review(client, amount="20000")  # our minimum is 10 000 here, the sandbox's 50 000
    answer = await confirm(client, page)
    assert answer.status_code == 422
    assert message in answer.text
    assert 'value="NGUYEN VAN ANH"' in answer.text and 'value="19030413601018"' in answer.text
    assert 'value="20000"' in answer.text
    async with db.sessionmaker() as session:
        order = (await session.exec(select(Order))).one()
    assert order.status == "REJECTED" and message in (order.rejection_message or "")


async def test_another_persons_order_is_not_found(live_app: LiveApp, db: Db) -> None:
    owner = await signed_in_client(live_app, "user@example.com")
    order_id = await place_order(owner)
    stranger = await signed_in_client(live_app, "support@example.com")
    for path in (f"/orders/{order_id}", f"/orders/{order_id}/status", f"/orders/{order_id}/events"):
        answer = await stranger.get(path)
        assert answer.status_code == 404, path
        assert "NGUYEN VAN ANH" not in answer.text
    assert (await owner.get(f"/orders/{order_id}/status")).status_code == 200
    listing = await stranger.get("/orders")
    assert order_id not in listing.text


async def test_edit_from_the_review_brings_the_form_back_filled_in(live_app: LiveApp, db: Db) -> None:
    client = await signed_in_client(live_app)
    page = await review(client)
    assert "••••••••••1018" in page.text and "19030413601018" not in page.text  # masked on the summary
    edit = await client.get("/orders/new", params={"edit": "1"})
    assert 'value="19030413601018"' in edit.text and 'value="NGUYEN VAN ANH"' in edit.text
    assert 'value="970407" selected' in edit.text
    async with db.sessionmaker() as session:
        assert (await session.exec(select(Order))).all() == []  # reviewing moves no money


async def test_hostile_ipns_leave_replay_and_reconciliation_running(
    live_app: LiveApp, db: Db, rsa_keys: RsaKeys
) -> None:
    """After every hostile body, an interrupted valid receipt is still replayed and a quiet order still polled."""
    client = await signed_in_client(live_app)
    for body in HOSTILE.values():
        answer = await client.post("/ipn/alixpay", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400, body[:80]
    live_app.sandbox.set_faults(drop=True)  # no IPN arrives: only the jobs can move this order
    order_id = await place_order(client)
    interrupted = ipn_body(live_app.settings, rsa_keys.alix.private, order_id=order_id, status="PAYMENT_COMPLETED")
    (receipt_id,) = await store_raw(Database.on(db.engine), Delivery(interrupted))
    order = await db.final(order_id, "SUCCESS", timeout=40)
    receipts = {receipt.id: receipt.verdict for receipt in await db.receipts(order_id)}
    assert receipts[receipt_id] in ("applied", "stale")  # replayed; stale if the poll got there first
    assert "poll" in {source for _, _, source in await db.transitions(order)}
    assert all(receipt.verdict for receipt in await db.all_receipts())


async def test_signed_answers_and_ipns_with_another_amount_are_flagged_never_applied(live_app: LiveApp, db: Db) -> None:
    live_app.sandbox.set_faults(amount_drift=-99_000)
    client = await signed_in_client(live_app)
    order_id = await place_order(client)

    async def flagged_from_everywhere() -> set[str] | None:
        events = await db.events(await db.order(order_id))
        sources = {event.source for event in events if event.kind == "mismatch"}
        return sources if sources >= {"create", "ipn", "poll"} else None

    await async_wait_for(flagged_from_everywhere, what="mismatches from create, IPN and poll", timeout=30)
    order = await db.order(order_id)
    assert order.status == "CREATING" and await db.transitions(order) == []
    assert {receipt.verdict for receipt in await db.receipts(order_id)} == {"mismatch"}
    page = await client.get(f"/orders/{order_id}")
    assert "does not match it, so it was not applied" in page.text


@pytest.mark.parametrize("amount", ["9" * 5000, "1e400", "1" + "0" * 40])
async def test_absurd_amounts_get_the_normal_message_never_a_500(live_app: LiveApp, amount: str) -> None:
    client = await signed_in_client(live_app)
    await client.get("/orders/new")
    data = {**FORM, "amount": amount, "_csrf_token": client.cookies["csrftoken"]}
    for path in ("/orders/validate", "/orders/review"):
        answer = await client.post(path, data=data)
        assert answer.status_code == 422, answer.text
        assert "Enter a whole amount in VND, without decimals." in answer.text
