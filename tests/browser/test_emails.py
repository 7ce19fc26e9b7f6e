"""Every email, in every language, read the way a mail client shows it: axe-clean HTML and a plain text part."""

import pytest
from playwright.sync_api import Page

from tests.browser.test_cashout_flow import assert_accessible
from tests.unit.test_email_kinds import SUPPORT, build
from webapp.i18n import LOCALES, lang_attribute
from webapp.notifications.kinds import MAILED_STATUSES


@pytest.mark.parametrize("locale", LOCALES)
def test_every_email_is_accessible_and_its_text_part_reads_well(page: Page, locale: str) -> None:
    for status, kind in MAILED_STATUSES.items():
        _, text, html = build(status.value, kind.name, locale, SUPPORT)
        page.set_content(html)
        assert page.evaluate("document.documentElement.lang") == lang_attribute(locale)
        assert page.locator("img:not([alt])").count() == 0  # no image without a text alternative
        assert_accessible(page)  # contrast, headings, link names, the document's language and title
        assert "<" not in text and "{" not in text and "\n\n\n" not in text, text  # no markup, no gaps
        assert page.locator("h1").inner_text() == text.splitlines()[0]  # the text part says what the HTML says
