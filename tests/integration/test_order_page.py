"""The order experience as a receipt: review with an estimate, units and local numbers, failed states, Back."""

import re

from tests.integration.conftest import LiveApp
from tests.integration.flow import Db, confirm, place_order, review, signed_in_client


def steps(page: str) -> list[str]:
    """The state of each timeline step on an order page."""
    timeline = page.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    return re.findall(r'<li class="(\w+)">', timeline)


async def test_review_estimates_the_cost_once_alix_pay_has_given_a_rate(live_app: LiveApp, db: Db) -> None:
    client = await signed_in_client(live_app)
    first = await review(client)
    assert "Alix Pay sets the USDT amount, rate and fees when it accepts the order" in first.text  # no rate yet
    assert first.headers["cache-control"] == "no-store"
    order_id = (await confirm(client, first)).headers["location"].rsplit("/", 1)[1]
    await db.final(order_id, "SUCCESS")
    second = await review(client, amount="250.000")
    # The sandbox's rate is 25 000 VND per USDT and its fees 0.5 + 0.2 USDT: 10 + 0.7 USDT.
    assert "about 10 USDT" in second.text and "about 0.7 USDT" in second.text and "about 10.7 USDT" in second.text
    assert "1 USDT = ₫25,000" in second.text


async def test_back_after_confirming_leads_to_the_order_not_the_review(live_app: LiveApp) -> None:
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    back = await client.get("/orders/review")
    assert back.status_code == 303 and back.headers["location"] == f"/orders/{order_id}"


async def test_the_order_page_reads_as_a_receipt_in_the_persons_numbers(live_app: LiveApp, db: Db) -> None:
    client = await signed_in_client(live_app, lang="vi")
    order_id = await place_order(client)
    order = await db.final(order_id, "SUCCESS")
    page = (await client.get(f"/orders/{order_id}")).text
    assert f'value="{order.reference}"' in page and order.reference == order_id[:8].upper()
    assert "<title>Hoàn tất · Rút tiền 100.000\xa0₫" in page  # the status first in the tab
    for figure in ("4 USDT", "0,5 USDT", "0,2 USDT", "4,7 USDT", "1 USDT = 25.000\xa0₫"):
        assert figure in page, figure  # a decimal comma beside "100.000 ₫", each amount with its unit
    assert steps(page) == ["done"] * 4
    receipt = await client.get(f"/orders/{order_id}/printable")
    assert receipt.status_code == 200 and "Biên nhận rút tiền" in receipt.text and "4,7 USDT" in receipt.text
    stranger = await signed_in_client(live_app, email="someone.else@example.com")
    for part in ("", "/printable", "/status", "/events"):  # another person's order is as good as absent
        assert (await stranger.get(f"/orders/{order_id}{part}")).status_code == 404, part


async def test_a_failed_order_shows_no_pending_step_and_says_what_happens_next(live_app: LiveApp, db: Db) -> None:
    client = await signed_in_client(live_app)
    order_id = await place_order(client, amount="66666")  # the sandbox's ERROR
    await db.final(order_id, "ERROR")
    page = (await client.get(f"/orders/{order_id}")).text
    assert not {"current", "upcoming"} & set(steps(page)), steps(page)
    assert steps(page)[-1] in ("failed", "skipped") and "failed" in steps(page)
    assert "What happens next" in page and f"Give them the reference {order_id[:8].upper()}" in page


async def test_the_status_fragment_changes_only_when_the_status_does(live_app: LiveApp) -> None:
    live_app.sandbox.set_faults(drop=True)  # no IPN: the order stays where the create answer put it
    client = await signed_in_client(live_app)
    order_id = await place_order(client)
    first = await client.get(f"/orders/{order_id}/status")
    second = await client.get(f"/orders/{order_id}/status")
    assert 'aria-live="polite"' in first.text
    assert first.text == second.text  # nothing ticks inside the live region between status changes
    assert "data-countdown" not in first.text and "holds this order until" in first.text


async def test_home_after_sign_in_greets_the_person_with_their_role(live_app: LiveApp) -> None:
    client = await signed_in_client(live_app)
    home = (await client.get("/")).text
    assert "You are signed in as user@example.com (end user)" in home
    assert "Sign in, enter the bank details" not in home and "Development accounts" not in home
