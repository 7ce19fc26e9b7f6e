"""The support console over real HTTP: roles, masking and audited reveals, exports, actions, the whole timeline."""

import asyncio
import csv
import html
import io
import re
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlmodel import select

from tests.conftest import RsaKeys
from tests.integration.conftest import LiveApp
from tests.integration.flow import Db, place_order, signed_in_client
from tests.integration.ipn_bodies import ipn_body
from tests.processes import async_wait_for
from webapp.audit import AuditEntry
from webapp.orders.figures import order_figures
from webapp.orders.models import OrderEvent


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"x-csrftoken": client.cookies["csrftoken"]}


async def audit_rows(db: Db) -> list[AuditEntry]:
    async with db.sessionmaker() as session:
        return list((await session.exec(select(AuditEntry).order_by(AuditEntry.id))).all())


@pytest.fixture
async def placed(live_app: LiveApp, db: Db) -> str:
    """One order placed by an end user, with at least one IPN stored for it."""
    order_id = await place_order(await signed_in_client(live_app))
    await async_wait_for(lambda: db.receipts(order_id), what="an IPN for the order")
    return order_id


# Who may use each support route: tests/integration/test_authorisation.py.


async def test_personal_data_is_masked_until_revealed_with_a_reason_which_is_audited(
    live_app: LiveApp, db: Db, placed: str
) -> None:
    agent = await signed_in_client(live_app, "support@example.com")
    page = await agent.get(f"/support/orders/{placed}")
    assert page.status_code == 200
    assert "1903" not in page.text and "••••1018" in page.text and "N. V. A." in page.text
    assert "us•••@example.com" in page.text and "user@example.com" not in page.text.replace("Signed in as", "")

    refused = await agent.post(f"/support/orders/{placed}/reveal", data={"reason": "  "}, headers=csrf(agent))
    assert refused.status_code == 422 and "19030413601018" not in refused.text
    assert await audit_rows(db) == []

    no_field = await agent.post(f"/support/orders/{placed}/reveal", data={"reason": "ticket 4711"}, headers=csrf(agent))
    assert no_field.status_code == 422 and await audit_rows(db) == []

    # One field at a time, each with its own audited reason: the account alone leaves the name and email masked.
    account = await agent.post(
        f"/support/orders/{placed}/reveal", data={"reason": "ticket 4711", "field": "account"}, headers=csrf(agent)
    )
    assert account.status_code == 200 and account.headers["cache-control"] == "no-store"
    assert "19030413601018" in account.text and "NGUYEN VAN ANH" not in account.text
    assert "user@example.com" not in account.text.replace("Signed in as", "")
    name = await agent.post(
        f"/support/orders/{placed}/reveal", data={"reason": "ticket 4712", "field": "name"}, headers=csrf(agent)
    )
    assert "NGUYEN VAN ANH" in name.text and "19030413601018" not in name.text
    email = await agent.post(
        f"/support/orders/{placed}/reveal", data={"reason": "ticket 4713", "field": "email"}, headers=csrf(agent)
    )
    assert 'data-personal="email">user@example.com<' in email.text and "NGUYEN VAN ANH" not in email.text
    entries = await audit_rows(db)
    assert [(entry.action, entry.reason, entry.detail, entry.actor) for entry in entries] == [
        ("reveal", "ticket 4711", "account number shown", "support@example.com"),
        ("reveal", "ticket 4712", "recipient's name shown", "support@example.com"),
        ("reveal", "ticket 4713", "email address shown", "support@example.com"),
    ]
    vietnamese = await agent.get(f"/support/orders/{placed}", params={"lang": "vi"})
    assert "số tài khoản" in vietnamese.text  # the audit rows on the timeline read in the agent's language
    again = await agent.get(f"/support/orders/{placed}")
    assert "19030413601018" not in again.text  # that view only


async def test_csv_export_is_masked_and_unmasked_only_with_a_reason(live_app: LiveApp, db: Db, placed: str) -> None:
    agent = await signed_in_client(live_app, "support@example.com")
    masked = await agent.get("/support/export.csv", params={"q": "user@example.com"})
    assert masked.status_code == 200 and masked.headers["x-total-rows"] == "1"
    assert masked.content.startswith(b"\xef\xbb\xbfcreated_at,")  # a UTF-8 BOM: spreadsheets keep the accents
    (row,) = list(csv.DictReader(io.StringIO(masked.text.removeprefix("\ufeff"))))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", row["created_at"])  # Vietnam time, to the second
    order = await db.order(placed)
    figures = order_figures(order)
    assert row["usdt_amount"] == str(figures.token_amount) and row["total_usdt"] == str(figures.total)
    assert row["reason"] == ""  # not failed
    assert (row["order_id"], row["account"], row["recipient"]) == (placed, "••••••••••1018", "N. V. A.")
    assert row["email"] == "us•••@example.com"

    refused = await agent.post("/support/export.csv", data={"q": "user@example.com"}, headers=csrf(agent))
    assert refused.status_code == 422
    clear = await agent.post(
        "/support/export.csv", data={"q": "user@example.com", "reason": "court order 12"}, headers=csrf(agent)
    )
    (row,) = list(csv.DictReader(io.StringIO(clear.text.removeprefix("\ufeff"))))
    assert (row["account"], row["email"]) == ("19030413601018", "user@example.com")
    assert [(entry.action, entry.reason) for entry in await audit_rows(db)] == [
        ("export", ""),
        ("reveal_export", "court order 12"),
    ]


async def test_check_status_now_polls_through_the_reconciler_and_is_recorded(
    live_app: LiveApp, db: Db, placed: str
) -> None:
    await db.final(placed, "SUCCESS")  # every IPN applied: a poll ahead of them would rightly flag a disagreement
    agent = await signed_in_client(live_app, "support@example.com")
    answer = await agent.post(f"/support/orders/{placed}/check", headers=csrf(agent), follow_redirects=True)
    assert answer.status_code == 200  # followed back to the order page
    order = await db.order(placed)
    async with db.sessionmaker() as session:
        manual = (
            await session.exec(select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.source == "manual"))
        ).all()
    assert [event.kind for event in manual] == ["poll"]
    assert manual[0].detail.startswith("Alix Pay says ")
    (entry,) = await audit_rows(db)
    assert (entry.action, entry.order_id) == ("check_status", order.id)
    assert "Status check with Alix Pay" in answer.text


async def test_timeline_shows_duplicate_bad_signature_and_mismatch_receipts_with_their_verdicts(
    live_app: LiveApp, db: Db, rsa_keys: RsaKeys
) -> None:
    live_app.sandbox.set_faults(drop=True)
    order_id = await place_order(await signed_in_client(live_app))
    # In a thread: the app serves IPNs on this test's event loop, which a blocking wait would stall.
    await asyncio.to_thread(live_app.sandbox.wait_for_status, order_id, "SUCCESS")
    # The sandbox dropped the order's IPNs (it reached SUCCESS by polling): the first replay is the first IPN seen.
    steps = [({}, None), ({}, "duplicate"), ({"corrupt_signature": True}, "bad_signature")]
    for faults, verdict in [*steps, ({"amount_drift": 5000}, "mismatch")]:
        live_app.sandbox.admin("PUT", f"/admin/orders/{order_id}/faults", json=faults)
        count = await _verdicts(db, order_id, verdict)
        live_app.sandbox.admin("POST", f"/admin/orders/{order_id}/replay")
        # Wait for this replay's own verdict: Alix Pay's retries of a refused one may arrive in between.
        await async_wait_for(
            lambda verdict=verdict, count=count: _more_verdicts(db, order_id, verdict, count),
            what=f"the replayed IPN to be judged {verdict or 'at all'}",
        )
    verdicts = [receipt.verdict for receipt in await db.receipts(order_id)]
    assert {"duplicate", "bad_signature", "mismatch"} <= set(verdicts[1:])  # Alix Pay retries the refused one

    agent = await signed_in_client(live_app, "support@example.com")
    page = await agent.get(f"/support/orders/{order_id}")
    for verdict, words in (
        ("duplicate", "duplicate, ignored"),
        ("bad_signature", "bad signature, not applied"),
        ("mismatch", "does not match the order, not applied"),
    ):
        assert f'<code class="verdict verdict-{verdict}">{verdict}</code>' in page.text
        assert words in page.text
    assert "Disagreement: not applied" in page.text  # the mismatch flagged on the order's history

    mismatch = next(receipt for receipt in await db.receipts(order_id) if receipt.verdict == "mismatch")
    dry_run = await agent.post(f"/support/receipts/{mismatch.id}/reverify", headers=csrf(agent))
    assert "would give: mismatch" in dry_run.text and "fiatAmount" in dry_run.text
    reviewed = await agent.post(
        f"/support/cases/receipt/{mismatch.id}",
        data={"action": "resolve", "note": "sandbox fault", "next": f"/support/orders/{order_id}"},
        headers=csrf(agent),
        follow_redirects=True,
    )
    assert "Reviewed by support@example.com: sandbox fault" in reviewed.text
    assert [entry.action for entry in await audit_rows(db)] == ["reverify", "case_resolved"]
    assert (await db.order(order_id)).status == "SUCCESS"  # a dry run and a review change nothing


async def _verdicts(db: Db, order_id: str, verdict: str | None) -> int:
    """How many of the order's receipts got `verdict` (None: any verdict)."""
    judged = [receipt.verdict for receipt in await db.receipts(order_id) if receipt.verdict]
    return sum(verdict in (None, given) for given in judged)


async def _more_verdicts(db: Db, order_id: str, verdict: str | None, than: int) -> bool:
    return await _verdicts(db, order_id, verdict) > than


async def test_search_page_links_results_and_pushes_a_shareable_url(live_app: LiveApp, db: Db, placed: str) -> None:
    agent = await signed_in_client(live_app, "support@example.com")
    page = await agent.get("/support/", params={"q": "user@exam"})
    assert f"/support/orders/{placed}" in page.text and "start of an email address" in page.text
    fragment = await agent.get("/support/", params={"q": "1018"}, headers={"hx-request": "true"})
    assert fragment.text.lstrip().startswith('<section id="results"')
    assert f"/support/orders/{placed}" in fragment.text
    assert "1 order shown, newest first." in fragment.text  # one order: not "1 orders"
    assert f"<td><code>{placed[:8].upper()}</code></td>" in fragment.text  # the reference the customer reads out
    await place_order(await signed_in_client(live_app))
    two = await agent.get("/support/", params={"q": "1018"}, headers={"hx-request": "true"})
    assert "2 orders shown, newest first." in two.text
    vietnamese = await agent.get("/support/", params={"q": "1018", "lang": "vi"}, headers={"hx-request": "true"})
    assert "Hiển thị 2 lệnh, mới nhất trước." in vietnamese.text


async def test_the_language_switch_and_back_to_search_keep_the_search(live_app: LiveApp, placed: str) -> None:
    agent = await signed_in_client(live_app, "support@example.com")
    search = [("q", "user@exam"), ("status", "SUCCESS"), ("status", "FAIL"), ("stuck", "1")]
    page = await agent.get("/support/", params=search)
    switch = re.search(r'<nav class="lang-switch".*?</nav>', page.text, re.S).group(0)
    to_vietnamese = html.unescape(re.search(r'href="(/support\?[^"]*lang=vi)"', switch).group(1))
    assert sorted(parse_qsl(to_vietnamese.split("?")[1])) == sorted([*search, ("lang", "vi")])  # both statuses kept
    # After a search made in place (htmx pushes its URL), the switch is drawn again for that search.
    fragment = await agent.get("/support/", params={"q": "1018"}, headers={"hx-request": "true"})
    assert 'id="lang-switch" aria-label="Language" hx-swap-oob="true"' in fragment.text
    assert 'href="/support?q=1018&amp;lang=zh"' in fragment.text

    link = re.search(rf'href="(/support/orders/{placed}\?back=[^"]+)"', fragment.text).group(1)
    order_page = await agent.get(html.unescape(link))
    back = re.search(r'<a href="([^"]*)">Back to search</a>', order_page.text).group(1)
    assert html.unescape(back) == "/support?q=1018"
    assert f'href="/support/orders/{placed}?lang=vi"' in order_page.text  # a page that is not a search: `lang` alone
    forged = await agent.get(f"/support/orders/{placed}", params={"back": "q=x&next=https://evil.example"})
    back = re.search(r'<a href="([^"]*)">Back to search</a>', forged.text).group(1)
    assert html.unescape(back) == "/support?q=x"  # only what a search holds comes back


async def test_a_bad_signature_ipn_for_an_order_is_shown_to_support(
    live_app: LiveApp, db: Db, placed: str, rsa_keys: RsaKeys
) -> None:
    body = ipn_body(live_app.settings, rsa_keys.other.private, order_id=placed, status="SUCCESS")
    agent = await signed_in_client(live_app, "support@example.com")
    assert (await agent.post("/ipn/alixpay", content=body)).status_code == 400
    page = await agent.get(f"/support/orders/{placed}")
    assert re.search(r"verdict-bad_signature", page.text)
    # The sandbox keeps notifying about the order meanwhile: find the receipt of the forged body itself.
    forged = [receipt for receipt in await db.receipts(placed) if receipt.body == body]
    assert [receipt.verdict for receipt in forged] == ["bad_signature"]


async def test_the_support_timeline_and_status_card_update_live(
    live_app: LiveApp, db: Db, placed: str, rsa_keys: RsaKeys
) -> None:
    agent = await signed_in_client(live_app, "support@example.com")
    async with agent.stream("GET", f"/support/orders/{placed}/events") as events:
        lines = events.aiter_lines()

        async def until(needle: str) -> None:
            async for line in lines:
                if needle in line:
                    return

        await asyncio.wait_for(until("support-timeline"), 10)
        body = ipn_body(live_app.settings, rsa_keys.alix.private, order_id=placed, status="SUCCESS", fiat_amount=1)
        assert (await agent.post("/ipn/alixpay", content=body)).json() == {"verdict": "mismatch"}
        await asyncio.wait_for(until("verdict-mismatch"), 10)  # pushed, not reloaded
        # The status card is redrawn beside the timeline (out of band) when the order moves on.
        await asyncio.wait_for(until('<section id="support-status" class="card status-success"'), 30)
