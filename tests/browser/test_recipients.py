"""The second cash-out, by keyboard alone, in every language: a saved recipient fills the form, the person chooses
the amount, reviews and confirms, and lands on the new order's page."""

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_cashout_flow import assert_accessible, sign_in
from tests.browser.test_every_page import fill_form
from tests.browser.test_keyboard_and_errors import tab_to
from webapp.i18n import translate

PAYEES = {
    "en": ("Lê Văn An", "0071000100001"),
    "vi": ("Lê Văn Bình", "0071000100002"),
    "zh": ("Lê Văn Cường", "0071000100003"),
}


def both_widths(page: Page, name: str) -> None:
    """Axe at 1280 px; no sideways scrolling at 320 px; a screenshot at each."""
    folder = ARTIFACTS / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    assert_accessible(page)
    page.screenshot(path=folder / f"{name}-1280.png", full_page=True)
    page.set_viewport_size({"width": 320, "height": 640})
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0, name
    page.screenshot(path=folder / f"{name}-320.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.parametrize("lang", ["en", "vi", "zh"])
def test_the_second_cash_out_from_a_saved_recipient_by_keyboard(
    dev_stack: dict[str, dict[str, str]], browser: Browser, lang: str
) -> None:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, dev_stack)
    app = dev_stack["app"]["url"]
    try:
        second_cash_out(page, app, lang)
    finally:  # the language chosen here is kept on the account: give it back, for the tests after this one
        page.goto(f"{app}/?lang=en")
        context.close()


def second_cash_out(page: Page, app: str, lang: str) -> None:
    name, account = PAYEES[lang]
    page.goto(f"{app}/orders/new?lang={lang}")
    fill_form(page, account=account)
    page.locator("#recipient_name").fill(name)
    page.locator("#cashout-form button[type=submit]").click()
    page.locator("form[action='/orders'] button[type=submit]").click()  # "Save this recipient" is ticked
    expect(page.locator("#order-status")).to_have_attribute("data-status", "SUCCESS", timeout=60_000)

    page.goto(f"{app}/orders/new?lang={lang}")
    payee = page.locator("ul.recipient-list a", has_text=account[-4:])
    expect(payee).to_have_count(1)  # paid out once: saved once
    both_widths(page, f"new_cashout_recipients-{lang}")

    tab_to(page, payee.inner_text().strip()[:12])
    page.keyboard.press("Enter")
    expect(page.locator("#account_number")).to_have_value(account)
    expect(page.locator("#amount")).to_have_value("")  # the amount stays the person's choice
    tab_to(page, translate(lang, "Amount (VND)"))
    page.keyboard.type("150000")
    tab_to(page, translate(lang, "Review"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(translate(lang, "Check your cash-out"))
    both_widths(page, f"review_saved_recipient-{lang}")
    tab_to(page, translate(lang, "Confirm and send"))
    page.keyboard.press("Enter")
    expect(page.locator("#order-status")).to_be_visible()
    assert page.locator("dl.summary").inner_text().count(account[-4:]) == 1
    both_widths(page, f"second_order-{lang}")

    page.goto(f"{app}/account/recipients?lang={lang}")
    card = page.locator("li.card", has_text=account[-4:])
    card_id = card.get_attribute("id")
    tab_to(page, translate(lang, "Your name for this recipient"), limit=80)
    while page.evaluate("document.activeElement.closest('li.card')?.id") != card_id:  # this payee's own field
        tab_to(page, translate(lang, "Your name for this recipient"), limit=80)
    page.keyboard.type(f"Anh {lang}")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(translate(lang, "The name is saved."))
    expect(page.locator(f"#{card_id} h2")).to_have_text(f"Anh {lang}")
    both_widths(page, f"recipients-{lang}")
