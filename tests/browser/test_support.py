"""A support agent in a real browser: find a customer's order, reveal with a reason, check status, export CSV."""

import csv
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_cashout_flow import assert_accessible, fill_cashout_form, sign_in

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
    expect(page.get_by_role("heading", name=f"Order {order_id}")).to_be_visible()
    expect(page.locator("dd[data-personal=account]")).to_have_text("•••••••••3456")
    assert "0071000123456" not in page.content()
    assert_accessible(page)

    page.get_by_label("Reason for showing the personal data").fill("Customer ticket #4711")
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("dd[data-personal=account]")).to_have_text("0071000123456")
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
    expect(page.get_by_role("heading", name="Background jobs (this instance)")).to_be_visible()
    expect(page.get_by_role("cell", name="reconcile")).to_be_visible()
    assert_accessible(page)
    context.close()
