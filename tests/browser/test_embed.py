"""A partner's page on one origin embeds the cash-out from another: the person cashes out inside the frame,
the parent page hears each step, and the partner's server receives our signed webhooks."""

import math
import time
from decimal import Decimal

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from playwright.sync_api import Browser, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_cashout_flow import assert_accessible, fill_cashout_form, sign_in
from tests.browser.test_every_page import fill_form


def test_a_cash_out_inside_a_partners_frame_tells_the_partner(
    dev_stack: dict[str, dict[str, str]], browser: Browser
) -> None:
    partner_url = dev_stack["partner"]["url"]  # http://127.0.0.1:P, embedding http://localhost:Q
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(partner_url)
    frame = page.frame_locator("#cashout")
    expect(frame.get_by_role("heading", name="Cash out USDT to a bank account")).to_be_visible(timeout=20_000)
    expect(frame.get_by_role("link", name="My cash-outs")).to_have_count(0)  # none of our own navigation

    fill_cashout_form(frame)
    frame.get_by_role("button", name="Review").click()
    frame.get_by_role("button", name="Confirm and send").click()
    status = frame.locator("#order-status")
    expect(status.get_by_role("heading")).to_have_text("Done — the money has been paid out", timeout=40_000)

    page.wait_for_function("window.cashoutMessages.some(m => m.type === 'order.completed')", timeout=10_000)
    messages = page.evaluate("window.cashoutMessages")
    types = [message["type"] for message in messages]
    assert all(message["v"] == 1 for message in messages)
    assert "ready" in types and "resize" in types
    assert types.index("order.created") < types.index("order.completed")
    order_id = next(message["orderId"] for message in messages if message["type"] == "order.created")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "embedded_cashout.png", full_page=True)

    # The partner's server verified every webhook's signature before it kept it (examples/partner/app.py).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        received = httpx.get(f"{partner_url}/webhooks.json", timeout=5).json()
        if any(event["type"] == "order.completed" for event in received):
            break
        time.sleep(0.5)
    ours = [event for event in received if event["data"]["orderId"] == order_id]
    assert ours[0]["type"] == "order.created"
    assert ours[-1]["type"] == "order.completed" and ours[-1]["data"]["status"] == "SUCCESS"
    assert len({event["id"] for event in ours}) == len(ours)
    references = {event["data"]["partnerReference"] for event in ours}
    assert len(references) == 1 and references.pop().startswith("wd-")  # the launch's reference, given back
    assert all(event["test"] is True for event in ours)  # the sandbox-backed stack moves no real money
    token = ours[-1]["data"]["token"]
    assert token["currency"] == "USDT" and token["reportedBy"] == "alixpay"
    assert Decimal(token["amount"]) * Decimal(token["rate"]) == ours[-1]["data"]["fiatAmount"]
    # Its server reads the order back through the partner API with the API key the stack made for it.
    read_back = httpx.get(f"{partner_url}/cashouts.json", timeout=10).json()["orders"]
    mine = next(order for order in read_back if order["id"] == order_id)
    assert (mine["status"], mine["partnerReference"], mine["token"]) == (
        "SUCCESS",
        ours[-1]["data"]["partnerReference"],
        token,
    )
    context.close()


def test_a_frame_sized_by_resize_settles_and_ready_comes_once(
    dev_stack: dict[str, dict[str, str]], browser: Browser
) -> None:
    """A partner page that sizes the frame to each `resize` plus room of its own (32 px), as one did: with the
    frame's height reported, that page grew the frame without end (971 → 3 803 px in 3 s)."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.add_init_script(  # the partner's own sizing, after the example page's (which sets the height as given)
        "window.addEventListener('message', function (event) {"
        " if (!event.data || event.data.type !== 'resize') { return; }"
        " setTimeout(function () {"
        " document.getElementById('cashout').style.height = (event.data.height + 32) + 'px'; }, 0); });"
    )
    page.goto(dev_stack["partner"]["url"])
    frame = page.frame_locator("#cashout")
    expect(frame.get_by_role("heading", name="Cash out USDT to a bank account")).to_be_visible(timeout=20_000)
    page.wait_for_timeout(1_000)  # a second to settle
    heights = []
    for _ in range(4):
        heights.append(page.evaluate("document.getElementById('cashout').getBoundingClientRect().height"))
        page.wait_for_timeout(250)
    assert len(set(heights)) == 1, heights  # settled: no longer growing
    content = frame.locator("html").evaluate("element => element.getBoundingClientRect().height")
    assert heights[0] == math.ceil(content) + 32 + 2  # the content's height, the partner's room and its border

    fill_cashout_form(frame)
    frame.get_by_role("button", name="Review").click()
    expect(frame.get_by_role("button", name="Confirm and send")).to_be_visible()
    types = [message["type"] for message in page.evaluate("window.cashoutMessages")]
    assert types.count("ready") == 1  # the frame moved to another page: still one `ready`
    context.close()


def test_a_page_on_an_unlisted_origin_cannot_frame_us(dev_stack: dict[str, dict[str, str]], browser: Browser) -> None:
    # The same partner page reached as http://localhost:P is an origin the partner did not register.
    unlisted = dev_stack["partner"]["url"].replace("127.0.0.1", "localhost")
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(unlisted)
    page.wait_for_timeout(3_000)
    frame = page.frames[1]
    assert frame.url.startswith("chrome-error://") or "Cash out USDT" not in frame.content()
    assert page.evaluate("window.cashoutMessages.length") == 0
    context.close()


def test_partner_pages_and_a_dark_embedded_page_pass_axe(
    dev_stack: dict[str, dict[str, str]], browser: Browser
) -> None:
    """An admin adds a dark-themed partner on the admin page; its embedded form and review are axe-clean."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_in(page, dev_stack, "admin@example.com")
    page.goto(f"{dev_stack['app']['url']}/admin/partners/new")
    assert_accessible(page)
    page.get_by_label("Slug").fill("nightwallet")
    page.get_by_label("Name", exact=True).fill("Night Wallet")
    page.get_by_label("Allowed origins").fill(dev_stack["partner"]["url"])
    page.get_by_label("Primary colour").fill("#8ab4f8")
    page.get_by_label("Theme").select_option("dark")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Give these secrets to the partner now")).to_be_visible()
    assert_accessible(page)
    launch_secret = page.locator("code", has_text="launch_").inner_text()

    now = int(time.time())
    claims = {
        "iss": "nightwallet",
        "aud": dev_stack["app"]["url"],
        "sub": "night-1",
        "email": "night@example.com",
        "email_verified": True,
        "exp": now + 120,
        "jti": f"jti-{now}",
    }
    token = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(launch_secret), algorithms=["HS256"])
    embedded = context.new_page()
    embedded.goto(f"{dev_stack['app']['url']}/embed/nightwallet/start?token={token}")
    expect(embedded.get_by_role("heading", name="Cash out USDT to a bank account")).to_be_visible()
    assert "theme-dark" in embedded.locator("body").get_attribute("class")
    assert_accessible(embedded)
    fill_cashout_form(embedded)
    embedded.get_by_role("button", name="Review").click()
    expect(embedded.get_by_role("heading", name="Check your cash-out")).to_be_visible()
    assert_accessible(embedded)
    context.close()


@pytest.mark.parametrize("locale", ["en", "vi", "zh"])
def test_embedded_pages_fit_a_narrow_frame_in_every_language(
    dev_stack: dict[str, dict[str, str]], browser: Browser, locale: str
) -> None:
    """The partner's page on a 320 px phone: the frame is narrower still, and no embedded page scrolls sideways."""
    context = browser.new_context(locale="en-US", viewport={"width": 320, "height": 640})
    page = context.new_page()
    page.goto(dev_stack["partner"]["url"])
    expect(page.frame_locator("#cashout").locator("#cashout-form")).to_be_visible(timeout=20_000)
    frame = next(frame for frame in page.frames if "/embed/" in frame.url)
    flow = frame.url.split("/orders", 1)[0]  # http://localhost:Q/embed/<partner>

    def fits(name: str) -> None:
        overflow = frame.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"embedded {name} ({locale}) is {overflow} px wider than its frame"
        page.screenshot(path=ARTIFACTS / "pages" / f"embedded_{name}-{locale}-320.png", full_page=True)

    (ARTIFACTS / "pages").mkdir(parents=True, exist_ok=True)
    frame.goto(f"{flow}/orders/new?lang={locale}")
    fits("new_cashout")
    fill_form(frame)  # by the fields' ids: their labels are in the page's language
    frame.locator("#cashout-form button[type=submit]").click()
    expect(frame.locator("figure.qr svg")).to_be_visible()
    fits("review")
    frame.locator("form[action$='/orders'] button[type=submit]").click()
    expect(frame.locator("#order-status")).to_be_visible()
    fits("order")
    frame.goto(f"{flow}/orders?lang={locale}")
    fits("my_cashouts")
    context.close()
