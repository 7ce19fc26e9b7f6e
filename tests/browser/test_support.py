"""A support agent in a real browser: find, reveal with a reason, check status, export; work a ticket by keyboard."""

import csv
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_cashout_flow import assert_accessible, fill_cashout_form, sign_in
from tests.browser.test_keyboard_and_errors import FOCUSED_NAME, tab_to
from webapp.i18n import translate

CUSTOMER = "user@example.com"


def place_order(browser: Browser, stack: dict[str, dict[str, str]]) -> str:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_in(page, stack, CUSTOMER)
    page.get_by_role("link", name="New cash-out").click()
    fill_cashout_form(page, account="0071000123456", name="Trần Thị Bích", amount="250000")
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Confirm and send").click()
    expect(page.get_by_role("heading", name="Cash-out of ₫250,000")).to_be_visible()
    order_id = page.url.rsplit("/", 1)[1]
    context.close()
    return order_id


def test_support_agent_finds_reveals_checks_and_exports(
    dev_stack: dict[str, dict[str, str]], browser: Browser, tmp_path: Path
) -> None:
    order_id = place_order(browser, dev_stack)
    context = browser.new_context(locale="en-US", accept_downloads=True)
    page = context.new_page()
    sign_in(page, dev_stack, "support@example.com")
    expect(page.get_by_role("heading", name="Support tools")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Support").click()
    assert_accessible(page)

    expect(page.get_by_label("Email, order number")).to_be_focused()  # an agent types at once
    page.keyboard.type(CUSTOMER)
    page.keyboard.press("Enter")
    result = page.locator(f"a[href^='/support/orders/{order_id}?']")
    expect(result).to_be_visible()
    assert "q=user%40example.com" in page.url  # the search is in the address bar, ready to share
    expect(page.get_by_role("cell", name="us•••@example.com").first).to_be_visible()
    assert_accessible(page)

    result.click()
    expect(page.get_by_role("heading", name=f"Order {order_id[:8].upper()}")).to_be_visible()
    expect(page.locator("dd[data-personal=account]")).to_have_text("•••••••••3456")
    assert "0071000123456" not in page.content()
    assert_accessible(page)

    page.get_by_label("Reason for showing personal data").fill("Customer ticket #4711")
    page.get_by_role("button", name="Show the account number").click()
    expect(page.locator("dd[data-personal=account]")).to_have_text("0071000123456")
    expect(page.locator("dd[data-personal=name]")).to_have_text("T. T. B.")  # one field at a time
    page.get_by_label("Reason for showing personal data").fill("Customer ticket #4711")
    page.get_by_role("button", name="Show the recipient's name").click()
    expect(page.locator("dd[data-personal=name]")).to_have_text("TRAN THI BICH")

    page.get_by_role("button", name="Check status now").click()
    expect(page.get_by_text("Support action: checked the status with Alix Pay")).to_be_visible()
    expect(page.get_by_text("Status check with Alix Pay").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "support_order.png", full_page=True)
    assert_accessible(page)

    page.get_by_role("link", name="Back to search").click()
    expect(page.get_by_label("Email, order number")).to_be_focused()  # an agent types at once
    page.keyboard.type(CUSTOMER)
    page.keyboard.press("Enter")
    expect(result).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV (personal data masked)").click()
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    rows = list(
        csv.DictReader(saved.read_text(encoding="utf-8-sig").splitlines())
    )  # with its BOM, as a spreadsheet reads it
    ours = next(row for row in rows if row["order_id"] == order_id)
    assert (ours["account"], ours["recipient"], ours["email"]) == ("•••••••••3456", "T. T. B.", "us•••@example.com")
    expect(page.get_by_text(f"Export finished: {len(rows)} rows.")).to_be_visible()

    for locale, heading in (("vi", "Tìm lệnh"), ("zh", "查找订单")):
        page.goto(f"{dev_stack['app']['url']}/support/?q={CUSTOMER}&lang={locale}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        assert_accessible(page)
        page.goto(f"{dev_stack['app']['url']}/support/orders/{order_id}?lang={locale}")
        assert_accessible(page)
    context.close()


def test_admin_sees_the_audit_log_intact(dev_stack: dict[str, dict[str, str]], browser: Browser) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_in(page, dev_stack, "admin@example.com")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page.get_by_text("The hash chain holds")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Operations").click()
    expect(page.get_by_role("heading", name="Background jobs (every instance)")).to_be_visible()
    expect(page.get_by_role("cell", name="reconcile")).to_be_visible()
    assert_accessible(page)
    context.close()


def sandbox_status(stack: dict[str, dict[str, str]], order_id: str) -> str:
    return httpx.get(f"{stack['sandbox']['url']}/admin/orders/{order_id}", timeout=10).json()["status"]


def make_a_disagreement(stack: dict[str, dict[str, str]], order_id: str) -> None:
    """Alix Pay notifies again with another amount (a sandbox fault): a signed IPN that disagrees with the order."""
    sandbox = stack["sandbox"]["url"]
    httpx.put(f"{sandbox}/admin/orders/{order_id}/faults", json={"amount_drift": 5000}, timeout=10).raise_for_status()
    httpx.post(f"{sandbox}/admin/orders/{order_id}/replay", timeout=10).raise_for_status()


def tab_within(page: Page, scope: str, name: str, *, limit: int = 80) -> None:
    """Press Tab until focus is on an element inside `scope` whose label or text starts with `name`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        inside = page.evaluate(f"() => !!document.activeElement.closest({scope!r})")
        if inside and page.evaluate(FOCUSED_NAME).startswith(name):
            return
    raise AssertionError(f"Tab never reached {name!r} in {scope}; focus is on {page.evaluate(FOCUSED_NAME)!r}")


@pytest.mark.parametrize(("lang", "browser_locale"), [("en", "en-US"), ("vi", "vi-VN")])
def test_an_agent_works_a_ticket_by_keyboard_alone_while_the_status_card_moves_live(
    dev_stack: dict[str, dict[str, str]], browser: Browser, lang: str, browser_locale: str
) -> None:
    """The order's status card turns SUCCESS without a reload; then a disagreement reaches the queue, and the
    agent works it by keyboard: queue → order → customer → note → back → take → resolve."""
    order_id = place_order(browser, dev_stack)
    reference = order_id[:8].upper()
    context = browser.new_context(locale=browser_locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, dev_stack, "support@example.com", lang)
    page.goto(f"{dev_stack['app']['url']}/support/orders/{order_id}")
    expect(page.locator("#support-status code").first).to_have_text("SUCCESS", timeout=60_000)  # pushed, not reloaded
    assert_accessible(page)

    make_a_disagreement(dev_stack, order_id)
    page.goto(f"{dev_stack['app']['url']}/support/")
    problem = page.locator("li.problem", has=page.locator(f"a[href='/support/orders/{order_id}']"))
    for _ in range(30):  # the replayed IPN is judged within a second or two
        if problem.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(problem).to_have_count(1)
    expect(problem.get_by_role("heading")).to_have_text(translate(lang, "Notification disagreed with the order"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"support_queue_{lang}_1280.png", full_page=True)
    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320  # no sideways scrolling
    page.screenshot(path=ARTIFACTS / f"support_queue_{lang}_320.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert_accessible(page)

    page.keyboard.press("Tab")
    page.keyboard.press("/")  # back to the search box from anywhere
    expect(page.get_by_role("searchbox")).to_be_focused()

    key = problem.get_attribute("id")
    tab_within(page, f"#{key}", translate(lang, "Order %(order)s", order=reference))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(translate(lang, "Order %(order)s", order=reference))
    tab_to(page, translate(lang, "The customer's page: every order, email and note"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name=reference).first).to_be_visible()
    assert_accessible(page)
    tab_to(page, translate(lang, "New note on this customer"), limit=600)  # past every order and email of theirs
    page.keyboard.type(f"Ticket 4711 ({lang}): asked twice about the amount")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"Ticket 4711 ({lang}): asked twice about the amount")).to_be_visible()
    page.screenshot(path=ARTIFACTS / f"support_customer_{lang}_1280.png", full_page=True)

    tab_to(page, translate(lang, "Back to search"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=translate(lang, "Needs a person"))).to_be_visible()
    tab_within(page, f"#{key}", translate(lang, "Take it"))
    page.keyboard.press("Enter")
    expect(problem).to_contain_text(translate(lang, "Taken by %(agent)s", agent="support@example.com"))
    tab_within(page, f"#{key}", translate(lang, "Resolution note"))
    page.keyboard.type("Sandbox fault injected on purpose; the order is paid.")
    page.keyboard.press("Enter")
    expect(page.locator(f"#{key}")).to_have_count(0)
    assert_accessible(page)
    page.goto(f"{dev_stack['app']['url']}/support/?lang=en")  # the agent's account keeps a chosen language
    context.close()
