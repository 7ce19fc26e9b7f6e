"""The whole cash-out by keyboard alone; failed submits and failed htmx requests that say so where focus is."""

from playwright.sync_api import Browser, Page, expect

from tests.browser.test_cashout_flow import sign_in

FOCUSED_NAME = """() => {
  const element = document.activeElement;
  const label = element.labels && element.labels.length ? element.labels[0].textContent : "";
  return (label || element.textContent || element.value || "").trim();
}"""


def tab_to(page: Page, name: str, *, limit: int = 60) -> None:
    """Press Tab until the focused element's label or text starts with `name`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED_NAME).startswith(name):
            return
    raise AssertionError(f"Tab never reached {name!r}; focus is on {page.evaluate(FOCUSED_NAME)!r}")


def test_the_whole_cash_out_by_keyboard(dev_stack: dict[str, dict[str, str]], browser: Browser) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(dev_stack["app"]["url"])
    tab_to(page, "Sign in")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{dev_stack['idp']['url']}/**")
    page.wait_for_load_state()
    tab_to(page, "user@example.com")  # the local IdP's account button
    page.keyboard.press("Enter")
    expect(page.get_by_text("Signed in as user@example.com", exact=True)).to_be_visible()
    tab_to(page, "New cash-out")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Cash out USDT to a bank account")).to_be_visible()

    tab_to(page, "Review")  # straight to the button: nothing filled in yet
    page.keyboard.press("Enter")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()  # the summary takes focus after the failed submit
    expect(summary.get_by_role("link")).to_have_count(4)
    tab_to(page, "Recipient's bank")  # the summary's first link leads to the bank field
    page.keyboard.press("Enter")
    expect(page.locator("#bank")).to_be_focused()

    page.keyboard.press("Shift+Tab")  # back to the bank search
    page.keyboard.type("techcom")
    expect(page.locator("#bank option")).to_have_count(2)
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # Techcombank, the one bank left after the prompt
    expect(page.locator("#bank")).to_have_value("970407")
    page.keyboard.press("Tab")
    page.keyboard.type("1903 0413 6010 18")
    page.keyboard.press("Tab")
    page.keyboard.type("Nguyễn Văn Ánh")
    page.keyboard.press("Tab")
    page.keyboard.type("100000")
    tab_to(page, "Review")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Check your cash-out")).to_be_visible()
    tab_to(page, "Confirm and send")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Cash-out of ₫100,000")).to_be_visible()
    expect(page.locator("#order-status h2")).to_have_text("Done — the money has been paid out", timeout=30_000)
    expect(page).to_have_title("Done · Cash-out ₫100,000 · Alix Pay")  # the tab follows the live status
    context.close()


def test_a_failed_htmx_request_shows_its_error_in_the_page(
    dev_stack: dict[str, dict[str, str]], browser: Browser
) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_in(page, dev_stack)
    page.goto(f"{dev_stack['app']['url']}/orders/new")
    region = page.locator("#request-error")
    expect(region).to_be_hidden()

    context.clear_cookies(name="csrftoken")  # the server refuses the inline validation below (403)
    with page.expect_response(lambda response: response.url.endswith("/orders/validate")) as refused:
        page.get_by_label("Account number").fill("12345")
        page.get_by_label("Recipient's name").focus()
    assert refused.value.status == 403
    expect(region).to_be_visible()
    expect(region).to_have_text("You do not have permission to do that.")
    expect(region).to_have_attribute("role", "alert")

    context.set_offline(True)
    page.get_by_label("Recipient's name").fill("An")
    page.get_by_label("Amount (VND)").focus()
    expect(region).to_have_text("We could not reach the server. Check your connection and try again.")
    context.set_offline(False)
    context.close()
