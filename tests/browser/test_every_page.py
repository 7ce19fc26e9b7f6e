"""Every page, in every language: axe-clean at 1280 px, no sideways scrolling at 320 px, a screenshot at both.

Screenshots go to `tests/artifacts/pages/` (kept by CI as artifacts). Signed in as the administrator, who sees
every page an end user, a support agent and an administrator has.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_cashout_flow import assert_accessible, sign_in

ADMIN = "admin@example.com"
NARROW, WIDE = {"width": 320, "height": 640}, {"width": 1280, "height": 900}


@dataclass
class Site:
    context: BrowserContext
    page: Page
    url: str
    order: str
    failed: str
    customer: str
    """The administrator's own customer page (`/support/customers/<id>`): they placed both orders."""


def fill_form(page: Page | Frame, *, account: str = "1903 0413 6010 18", amount: str = "100000") -> None:
    page.locator("#bank").select_option(label="Techcombank — Ngân hàng TMCP Kỹ thương Việt Nam")
    page.locator("#account_number").fill(account)
    page.locator("#recipient_name").fill("Nguyễn Văn Ánh")
    page.locator("#amount").fill(amount)


def place(page: Page, url: str, **form: str) -> str:
    page.goto(f"{url}/orders/new?lang=en")
    fill_form(page, **form)
    page.locator("#cashout-form button[type=submit]").click()
    page.get_by_role("button", name="Confirm and send").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cash-out of")
    return page.url.rsplit("/", 1)[1].split("?")[0]


@pytest.fixture(scope="module")
def site(dev_stack: dict[str, dict[str, str]], browser: Browser) -> Iterator[Site]:
    """The administrator, signed in, with a completed order and one the bank refused."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_in(page, dev_stack, ADMIN)
    url = dev_stack["app"]["url"]
    order = place(page, url)
    expect(page.locator("#order-status")).to_have_attribute("data-status", "SUCCESS", timeout=30_000)
    failed = place(page, url, account="1234560000")  # the sandbox's bank refusal
    expect(page.locator("#order-status")).to_have_attribute("data-status", "FAIL", timeout=30_000)
    page.goto(f"{url}/support/orders/{failed}?lang=en")
    customer = page.get_by_role("link", name="The customer's page").get_attribute("href")
    yield Site(context, page, url, order, failed, customer)
    context.close()


PAGES = {
    "home": "/",
    "new_cashout": "/orders/new",
    "order": "/orders/{order}",
    "failed_order": "/orders/{failed}",
    "printable": "/orders/{order}/printable",
    "my_cashouts": "/orders",
    "email_settings": "/account/notifications",
    "support_search": "/support/?q=admin%40example.com",
    "support_queue": "/support/",
    "support_order": "/support/orders/{order}",
    "support_failed_order": "/support/orders/{failed}",
    "support_customer": "{customer}",
    "support_as_customer": "/support/orders/{failed}/as-customer",
    "audit_log": "/support/audit",
    "operations": "/operations",
    "partners": "/admin/partners",
    "new_partner": "/admin/partners/new",
    "api_keys": "/admin/partners/example/api-keys",
    "partner_api_docs": "/api/partner/v1/docs",
    "not_found": "/no-such-page",
}


def check(page: Page, name: str, locale: str) -> None:
    """Axe at 1280 px, then 320 px without sideways scrolling; a full-page screenshot at each width."""
    folder = ARTIFACTS / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    assert_accessible(page)
    page.screenshot(path=folder / f"{name}-{locale}-1280.png", full_page=True)
    page.set_viewport_size(NARROW)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} ({locale}) is {overflow} px wider than 320 px"
    page.screenshot(path=folder / f"{name}-{locale}-320.png", full_page=True)
    page.set_viewport_size(WIDE)


@pytest.mark.parametrize("locale", ["en", "vi", "zh"])
def test_every_page_is_accessible_and_fits_320_px(site: Site, locale: str) -> None:
    page = site.page
    page.set_viewport_size(WIDE)
    for name, path in PAGES.items():
        address = site.url + path.format(order=site.order, failed=site.failed, customer=site.customer)
        page.goto(f"{address}{'&' if '?' in address else '?'}lang={locale}")
        check(page, name, locale)
    page.goto(f"{site.url}/orders/new?lang={locale}")
    fill_form(page)
    page.locator("#cashout-form button[type=submit]").click()
    expect(page.locator("figure.qr svg")).to_be_visible()
    check(page, "review", locale)
    page.goto(f"{site.url}/orders/new?lang={locale}")
    page.locator("#cashout-form button[type=submit]").click()  # nothing filled in: the error summary
    expect(page.locator("#error-summary")).to_be_visible()
    check(page, "form_errors", locale)


def test_anonymous_pages_fit_320_px(dev_stack: dict[str, dict[str, str]], browser: Browser) -> None:
    context = browser.new_context(locale="en-US", viewport=WIDE)
    page = context.new_page()
    for locale in ("en", "vi", "zh"):
        page.goto(f"{dev_stack['app']['url']}/?lang={locale}")
        check(page, "home_anonymous", locale)
    page.goto(dev_stack["mailbox"]["url"])
    check(page, "dev_mailbox", "en")
    context.close()


def test_a_failed_order_reads_as_failed(site: Site) -> None:
    page = site.page
    page.goto(f"{site.url}/orders/{site.failed}?lang=en")
    states = page.locator("#order-status .timeline li").evaluate_all("items => items.map(item => item.className)")
    assert states == ["done", "failed", "skipped", "skipped"]  # placed, then refused by the bank: nothing pending
    expect(page.get_by_role("heading", name="What happens next")).to_be_visible()
    expect(page.get_by_role("link", name="support@example.com")).to_be_visible()
    assert page.title().startswith("Failed · Cash-out ₫100,000")
