"""The activity charts in a real browser: axe-clean in three languages, their numbers reached and read by keyboard."""

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_cashout_flow import assert_accessible, sign_in
from tests.browser.test_support import tab_within
from webapp.i18n import translate

LANGUAGES = [("en", "en-US"), ("vi", "vi-VN"), ("zh", "zh-CN")]


@pytest.mark.parametrize(("lang", "browser_locale"), LANGUAGES)
def test_the_charts_read_in_every_language_and_their_tables_open_by_keyboard(
    dev_stack: dict[str, dict[str, str]], browser: Browser, lang: str, browser_locale: str
) -> None:
    context = browser.new_context(locale=browser_locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, dev_stack, "admin@example.com", lang)
    page.goto(f"{dev_stack['app']['url']}/operations")
    charts = page.locator("#activity")
    title = translate(lang, "Cash-outs per hour, last 24 hours")
    expect(charts.get_by_role("img", name=title)).to_be_visible()  # the SVG is named by its title and summary
    assert len(charts.get_by_role("img").all()) == 6
    assert_accessible(page)
    page.screenshot(path=str(ARTIFACTS / f"activity-{lang}-1280.png"), full_page=True)
    charts.screenshot(path=str(ARTIFACTS / f"activity-charts-{lang}-1280.png"))

    # By keyboard: Tab to the first chart's disclosure, open it, and the table is there with its headers.
    tab_within(page, "#activity", translate(lang, "Show the numbers"))
    page.keyboard.press("Enter")
    table = charts.get_by_role("table", name=title)
    expect(table).to_be_visible()
    expect(table.get_by_role("columnheader", name=translate(lang, "Hour"))).to_be_visible()
    assert len(table.get_by_role("rowheader").all()) == 24
    paid = translate(lang, "Paid out")
    expect(table.get_by_role("columnheader", name=paid)).to_be_visible()
    assert_accessible(page)

    # The minute's refresh redraws the charts; what the reader opened stays open, and focus stays where it was.
    focused = page.evaluate("() => document.activeElement.id")
    with page.expect_response(lambda response: response.url.endswith("/activity")):
        page.evaluate("() => htmx.ajax('GET', '/activity', {target: '#activity', swap: 'outerHTML'})")
    expect(table).to_be_visible()
    page.wait_for_function(f"() => document.activeElement.id === {focused!r}")

    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 320  # no sideways scrolling of the page
    page.screenshot(path=str(ARTIFACTS / f"activity-{lang}-320.png"), full_page=True)
    context.close()


def test_support_sees_the_charts_under_the_queue(dev_stack: dict[str, dict[str, str]], browser: Browser) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_in(page, dev_stack, "support@example.com")
    page.goto(f"{dev_stack['app']['url']}/support/")
    expect(page.get_by_role("img", name="Success rate per day, last 30 days")).to_be_visible()
    assert_accessible(page)
    context.close()
