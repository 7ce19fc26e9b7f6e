"""A person cashes out in a real browser: sign in, fill the form, review, confirm, watch the order complete live."""

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, FrameLocator, Page, expect

from tests.browser.conftest import ARTIFACTS
from webapp.i18n import translate

AXE = Axe()


def sign_in(page: Page, stack: dict[str, dict[str, str]], email: str = "user@example.com", lang: str = "en") -> None:
    """Sign in, then choose `lang`: an account keeps the language last chosen (an earlier test's, too)."""
    page.goto(f"{stack['app']['url']}/?lang={lang}")
    page.get_by_role("link", name=translate(lang, "Sign in")).first.click()
    page.get_by_role("button", name=email).click()
    page.goto(f"{stack['app']['url']}/?lang={lang}")
    expect(page.get_by_text(translate(lang, "Signed in as %(email)s", email=email), exact=True)).to_be_visible()


def fill_cashout_form(
    where: Page | FrameLocator,
    *,
    account: str = "1903 0413 6010 18",
    name: str = "Nguyễn Văn Ánh",
    amount: str = "100000",
) -> None:
    """Fill the new cash-out form (on our page, or inside a partner's frame) to Techcombank, as a person types it."""
    where.get_by_label("Recipient's bank").select_option(label="Techcombank — Ngân hàng TMCP Kỹ thương Việt Nam")
    where.get_by_label("Account number").fill(account)
    where.get_by_label("Recipient's name").fill(name)
    where.get_by_label("Amount (VND)").fill(amount)


def assert_accessible(page: Page) -> None:
    results = AXE.run(page)
    assert results.violations_count == 0, results.generate_report()


def test_cash_out_and_watch_the_order_reach_success_without_reloading(
    dev_stack: dict[str, dict[str, str]], browser: Browser
) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_in(page, dev_stack)
    page.get_by_role("link", name="New cash-out").click()
    assert_accessible(page)

    page.get_by_label("Find a bank").fill("techcom")
    expect(page.locator("#bank option")).to_have_count(2)  # the prompt and Techcombank
    fill_cashout_form(page)
    page.get_by_label("Account number").focus()  # leaving the amount field validates inline
    expect(page.get_by_text("The bank will see: NGUYEN VAN ANH")).to_be_visible()
    expect(page.get_by_text("You are sending ₫100,000.")).to_be_visible()

    page.get_by_role("button", name="Review").click()
    expect(page.get_by_role("heading", name="Check your cash-out")).to_be_visible()
    expect(page.get_by_text("••••••••••1018")).to_be_visible()
    expect(page.locator("figure.qr svg")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("button", name="Confirm and send").click()
    expect(page.get_by_role("heading", name="Cash-out of ₫100,000")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    status = page.locator("#order-status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status.get_by_role("heading")).to_have_text("Done — the money has been paid out", timeout=30_000)
    assert page.evaluate("window.__sameDocument === true")  # updated in place, never reloaded
    assert_accessible(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "cashout_success.png", full_page=True)

    page.get_by_role("link", name="My cash-outs").first.click()
    expect(page.get_by_role("cell", name="Done")).to_be_visible()
    context.close()


def test_inline_validation_speaks_the_persons_language(dev_stack: dict[str, dict[str, str]], browser: Browser) -> None:
    context = browser.new_context(locale="vi-VN")
    page = context.new_page()
    sign_in(page, dev_stack, lang="vi")
    page.get_by_role("link", name="Rút tiền mới").click()
    page.get_by_label("Số tài khoản").fill("12345")
    page.get_by_label("Tên người nhận").focus()
    expect(page.get_by_text("Nhập số tài khoản gồm 6 đến 19 chữ số.")).to_be_visible()
    expect(page.get_by_label("Số tài khoản")).to_have_attribute("aria-invalid", "true")
    context.close()
