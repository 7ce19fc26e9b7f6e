"""Support works cases: the queue of problems, taking and resolving them, notes, the customer's page and view."""

import csv
import io
import re
from datetime import timedelta

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.builders import PARTNER_SECRETS, make_order
from tests.embed_tokens import HS_SECRET
from tests.integration.conftest import LiveApp
from tests.integration.flow import Db, place_order, signed_in_client
from webapp.audit import AuditEntry
from webapp.auth.models import User
from webapp.db import utcnow
from webapp.embed.models import WebhookEvent
from webapp.embed.partners import PartnerSpec, save_partner
from webapp.i18n import translate
from webapp.ipn.models import IpnReceipt
from webapp.notifications.models import EmailMessage
from webapp.orders.models import Order, OrderEvent
from webapp.orders.phrases import POLL_BEHIND
from webapp.orders.statuses import status_info
from webapp.support.models import SupportCase

AGENT = "support@example.com"


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"x-csrftoken": client.cookies["csrftoken"]}


async def audit_rows(db: Db) -> list[AuditEntry]:
    async with db.sessionmaker() as session:
        return list((await session.exec(select(AuditEntry).order_by(AuditEntry.id))).all())


def queue_keys(page: str) -> list[str]:
    return re.findall(r'<li class="problem" id="problem-([a-z]+-\d+)">', page)


async def new_customer(session: AsyncSession, name: str) -> User:
    customer = User(issuer="https://idp.example", subject=name, email=f"{name}@example.vn")
    session.add(customer)
    await session.flush()
    return customer


async def one_of_each_problem(db: Db) -> dict[str, str]:
    """Each kind of problem, one hour apart (the newest last made): their queue keys by kind."""
    now = utcnow()
    async with db.sessionmaker() as session, session.begin():
        customer = await new_customer(session, "hoa")
        # Quiet for six hours; polled "just now" (in the future), so the live app's reconciler leaves it alone.
        stuck = make_order(
            user_id=customer.id,
            email=customer.email,
            updated_at=now - timedelta(hours=6),
            last_polled_at=now + timedelta(days=1),
        )
        fine = make_order(user_id=customer.id, email=customer.email, status="SUCCESS")
        session.add_all([stuck, fine])
        await session.flush()
        partner = await save_partner(
            session,
            PartnerSpec(
                slug="acme", name="Acme", origins=["https://acme.example"], token_alg="HS256", token_key=HS_SECRET
            ),
            PARTNER_SECRETS,
        )
        disagreement = OrderEvent(
            order_id=fine.id or 0,
            kind="disagreement",
            source="poll",
            detail=POLL_BEHIND(status="FAIL", ours="SUCCESS"),
            at=now - timedelta(hours=5),
        )
        parked = IpnReceipt(
            body=b"{}",
            body_size=2,
            dedupe_key="a" * 64,
            verdict="parked",
            last_error="RuntimeError",
            received_at=now - timedelta(hours=4),
        )
        mismatch = IpnReceipt(
            body=b"{}",
            body_size=2,
            dedupe_key="b" * 64,
            verdict="mismatch",
            external_order_id=fine.external_order_id,
            received_at=now - timedelta(hours=3),
        )
        email = EmailMessage(
            order_id=fine.id or 0,
            kind="done",
            status="SUCCESS",
            recipient=customer.email,
            locale="vi",
            state="gave_up",
            created_at=now - timedelta(hours=2),
        )
        webhook = WebhookEvent(
            event_id="evt_1",
            partner_id=partner.id or 0,
            order_id=fine.id or 0,
            type="order.succeeded",
            payload="{}",
            state="gave_up",
            created_at=now - timedelta(hours=1),
        )
        session.add_all([disagreement, parked, mismatch, email, webhook])
        await session.flush()
        return {
            "stuck": f"stuck-{stuck.id}",
            "disagreement": f"disagreement-{disagreement.id}",
            "parked": f"receipt-{parked.id}",
            "mismatch": f"receipt-{mismatch.id}",
            "email": f"email-{email.id}",
            "webhook": f"webhook-{webhook.id}",
        }


async def act(agent: httpx.AsyncClient, key: str, **data: str) -> httpx.Response:
    kind, ref = key.split("-")
    return await agent.post(f"/support/cases/{kind}/{ref}", data=data, headers=csrf(agent))


async def test_the_queue_lists_each_problem_newest_first_and_each_leaves_when_resolved(
    live_app: LiveApp, db: Db
) -> None:
    keys = await one_of_each_problem(db)
    agent = await signed_in_client(live_app, AGENT)
    page = await agent.get("/support/")
    newest_first = ["webhook", "email", "mismatch", "parked", "disagreement", "stuck"]
    assert queue_keys(page.text) == [keys[kind] for kind in newest_first]
    for words in (
        "Partner webhook not delivered",
        "Email not delivered",
        "Notification disagreed with the order",
        "Notification needs a person",
        "Status check disagreed",
        "Order stuck",
        "6 problems open, newest first.",
        "Open for 1 hour",
        "Open for 6 hours",
    ):
        assert words in page.text, words

    refused = await act(agent, keys["parked"], action="resolve", note="  ")
    assert refused.status_code == 422 and await audit_rows(db) == []
    resolved = await act(agent, keys["parked"], action="resolve", note="known bug, fixed in 1.4", next="/support/")
    assert resolved.status_code == 303 and resolved.headers["location"] == "/support/"
    elsewhere = await act(agent, keys["mismatch"], action="resolve", note="sandbox", next="https://evil.example/")
    assert elsewhere.headers["location"] == "/support"  # back within the console only
    after = await agent.get("/support/")
    assert queue_keys(after.text) == [keys[kind] for kind in ("webhook", "email", "disagreement", "stuck")]
    async with db.sessionmaker() as session:
        receipt = await session.get(IpnReceipt, int(keys["parked"].split("-")[1]))
    assert (receipt.reviewed_by, receipt.review_note) == (AGENT, "known bug, fixed in 1.4")  # the timeline says so
    entries = await audit_rows(db)
    assert [(entry.action, entry.reason, entry.actor) for entry in entries] == [
        ("case_resolved", "known bug, fixed in 1.4", AGENT),
        ("case_resolved", "sandbox", AGENT),
    ]
    assert (await act(agent, "receipt-999999", action="resolve", note="x")).status_code == 404
    assert (await act(agent, keys["webhook"], action="explode")).status_code == 400

    # The fact itself clearing takes a problem off the queue, with no case at all.
    async with db.sessionmaker() as session, session.begin():
        stuck = await session.get(Order, int(keys["stuck"].split("-")[1]))
        stuck.status, stuck.updated_at = "SUCCESS", utcnow()
    assert keys["stuck"] not in queue_keys((await agent.get("/support/")).text)


async def test_problems_are_taken_and_given_back_audited_and_filtered_by_whose(live_app: LiveApp, db: Db) -> None:
    keys = await one_of_each_problem(db)
    agent = await signed_in_client(live_app, AGENT)
    colleague = await signed_in_client(live_app, "admin@example.com")
    assert (await act(agent, keys["email"], action="take")).status_code == 303
    assert (await act(colleague, keys["webhook"], action="take")).status_code == 303

    mine = await agent.get("/support/", params={"who": "mine"})
    assert queue_keys(mine.text) == [keys["email"]]
    assert f"Taken by {AGENT}" in mine.text and "Give back" in mine.text
    unassigned = queue_keys((await agent.get("/support/", params={"who": "unassigned"})).text)
    assert keys["email"] not in unassigned and keys["webhook"] not in unassigned and keys["stuck"] in unassigned
    everyone = await agent.get("/support/")
    assert "Taken by admin@example.com" in everyone.text and len(queue_keys(everyone.text)) == 6

    assert (await act(agent, keys["email"], action="release")).status_code == 303
    assert queue_keys((await agent.get("/support/", params={"who": "mine"})).text) == []
    assert keys["email"] in queue_keys((await agent.get("/support/", params={"who": "unassigned"})).text)
    async with db.sessionmaker() as session:
        cases = (await session.exec(select(SupportCase).order_by(SupportCase.id))).all()
    assert [(case.kind, case.assignee) for case in cases] == [("email", None), ("webhook", "admin@example.com")]
    assert [(entry.action, entry.actor) for entry in await audit_rows(db)] == [
        ("case_taken", AGENT),
        ("case_taken", "admin@example.com"),
        ("case_released", AGENT),
    ]


async def test_notes_on_an_order_and_its_customer_are_audited_and_never_shown_to_the_customer(
    live_app: LiveApp, db: Db
) -> None:
    customer = await signed_in_client(live_app)
    order_id = await place_order(customer)
    user_id = (await db.order(order_id)).user_id
    agent = await signed_in_client(live_app, AGENT)
    empty = await agent.post(f"/support/orders/{order_id}/notes", data={"note": " "}, headers=csrf(agent))
    assert empty.status_code == 422
    on_order = await agent.post(
        f"/support/orders/{order_id}/notes", data={"note": "Called the bank, ticket 88"}, headers=csrf(agent)
    )
    assert on_order.status_code == 303
    on_customer = await agent.post(
        f"/support/customers/{user_id}/notes", data={"note": "Prefers Zalo, not email"}, headers=csrf(agent)
    )
    assert on_customer.status_code == 303
    order_page = await agent.get(f"/support/orders/{order_id}")
    assert "Called the bank, ticket 88" in order_page.text and "Prefers Zalo" not in order_page.text
    customer_page = await agent.get(f"/support/customers/{user_id}")
    assert "Prefers Zalo, not email" in customer_page.text
    entries = [(entry.action, entry.reason, entry.detail) for entry in await audit_rows(db)]
    order = await db.order(order_id)
    assert entries == [
        ("note_added", "Called the bank, ticket 88", f"note on order {order.id}"),
        ("note_added", "Prefers Zalo, not email", f"note on customer {user_id}"),
    ]
    for path in (f"/orders/{order_id}", f"/orders/{order_id}/status", "/orders", f"/orders/{order_id}/printable"):
        seen = await customer.get(path)
        assert seen.status_code == 200 and "ticket 88" not in seen.text and "Zalo" not in seen.text, path


async def test_the_customer_page_lists_that_customers_orders_only(live_app: LiveApp, db: Db) -> None:
    mine = [await place_order(await signed_in_client(live_app)) for _ in range(2)]
    theirs = await place_order(await signed_in_client(live_app, "someone.else@example.com"))
    agent = await signed_in_client(live_app, AGENT)
    order_page = await agent.get(f"/support/orders/{mine[0]}")
    user_id = (await db.order(mine[0])).user_id
    assert f'href="/support/customers/{user_id}"' in order_page.text
    page = await agent.get(f"/support/customers/{user_id}")
    assert page.status_code == 200 and "us•••@example.com" in page.text and "user@example.com" not in page.text
    shown = set(re.findall(r'href="/support/orders/([0-9a-f-]{36})"', page.text))
    assert shown == set(mine) and theirs not in page.text
    assert "2 orders" in page.text and "On: order placed and money sent" in page.text
    assert (await agent.get("/support/customers/999999")).status_code == 404


def figures_and_headline(page: str) -> tuple[str, str]:
    status = re.search(r'<section id="order-status".*?</section>', page, re.S).group(0)
    headline = re.search(r"<h2>(.*?)</h2>", status, re.S).group(1)
    figures = re.search(r'<dl class="summary">.*?</dl>', page, re.S).group(0)
    return headline, figures


async def test_see_what_the_customer_sees_is_their_own_page_in_their_language(live_app: LiveApp, db: Db) -> None:
    customer = await signed_in_client(live_app, lang="vi")
    order_id = await place_order(customer)
    await db.final(order_id, "SUCCESS")
    own = await customer.get(f"/orders/{order_id}")
    agent = await signed_in_client(live_app, AGENT)  # an English-speaking agent
    view = await agent.get(f"/support/orders/{order_id}/as-customer")
    assert view.status_code == 200 and 'lang="vi" inert' in view.text
    assert "in their language (Tiếng Việt)" in view.text
    assert figures_and_headline(view.text) == figures_and_headline(own.text)
    assert figures_and_headline(view.text)[0] == translate("vi", status_info("SUCCESS").headline)
    shown = re.search(r'<div class="customer-view".*?</div>\s*</main>', view.text, re.S)
    assert shown is not None and "<form" not in shown.group(0)  # nothing in the view acts


async def test_a_failed_order_shows_both_reasons_and_fail_and_error_are_told_apart(live_app: LiveApp, db: Db) -> None:
    async with db.sessionmaker() as session, session.begin():
        customer = await new_customer(session, "lan")
        failed = make_order(
            user_id=customer.id,
            email=customer.email,
            status="FAIL",
            locale="vi",
            provider_order={"type": "CASH_OUT", "description": "Beneficiary account closed"},
        )
        errored = make_order(user_id=customer.id, email=customer.email, status="ERROR", transfer_content="=1+1")
        session.add_all([failed, errored])
    agent = await signed_in_client(live_app, AGENT)
    page = await agent.get(f"/support/orders/{failed.external_order_id}")
    card = re.search(r'<section id="support-status".*?</section>', page.text, re.S).group(0)
    assert "<code>FAIL</code>" in card
    assert '<code lang="en">Beneficiary account closed</code>' in card  # Alix Pay's words, as received
    assert "What the customer reads (Tiếng Việt)" in card and '<dd lang="vi">' in card  # and theirs, beside

    results = await agent.get("/support/", params={"q": "lan@example.vn"}, headers={"hx-request": "true"})
    assert "<code>FAIL</code>" in results.text and "<code>ERROR</code>" in results.text

    both = await agent.get(
        "/support/export.csv", params=[("q", "lan@example.vn"), ("status", "FAIL"), ("status", "ERROR")]
    )
    rows = list(csv.DictReader(io.StringIO(both.text.removeprefix("\ufeff"))))
    assert both.headers["x-total-rows"] == "2" and {row["status"] for row in rows} == {"FAIL", "ERROR"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", row["created_at"]) for row in rows)
    by_status = {row["status"]: row for row in rows}
    assert by_status["FAIL"]["reason"] == "Beneficiary account closed"
    assert by_status["ERROR"]["transfer_content"] == "'=1+1"  # a spreadsheet shows it, never runs it
    one = await agent.get("/support/export.csv", params={"q": "lan@example.vn", "status": "FAIL"})
    assert one.headers["x-total-rows"] == "1"


async def test_the_audit_page_links_each_row_to_its_order(live_app: LiveApp, db: Db) -> None:
    order_id = await place_order(await signed_in_client(live_app))
    agent = await signed_in_client(live_app, AGENT)
    await agent.post(f"/support/orders/{order_id}/notes", data={"note": "checked"}, headers=csrf(agent))
    admin = await signed_in_client(live_app, "admin@example.com")
    audit = await admin.get("/support/audit")
    assert f'<a href="/support/orders/{order_id}"><code>{order_id[:8].upper()}</code></a>' in audit.text


async def test_support_signs_a_person_out_everywhere_and_no_one_else(live_app: LiveApp, db: Db) -> None:
    phone, laptop = await signed_in_client(live_app), await signed_in_client(live_app)
    order_id = await place_order(phone)
    bystander = await signed_in_client(live_app, "someone.else@example.com")
    agent = await signed_in_client(live_app, AGENT)
    user_id = (await db.order(order_id)).user_id
    page = await agent.get(f"/support/customers/{user_id}")
    assert "on 2 devices or browsers" in page.text
    out = await agent.post(f"/support/customers/{user_id}/sign-out", headers=csrf(agent))
    assert out.status_code == 303
    after = await agent.get(out.headers["location"])
    assert "Signed out: 2 sessions ended" in after.text and "on 0 devices or browsers" in after.text
    for device in (phone, laptop):
        again = await device.get(f"/orders/{order_id}", follow_redirects=False)
        assert again.headers["location"].startswith("/login")
    assert (await bystander.get("/orders", follow_redirects=False)).status_code == 200
    assert (await agent.get("/support", follow_redirects=False)).status_code == 200
    entry = (await audit_rows(db))[-1]
    assert (entry.actor, entry.action, entry.detail) == (AGENT, "signed_out", f"user {user_id}")
    assert (await agent.post("/support/customers/999999/sign-out", headers=csrf(agent))).status_code == 404
