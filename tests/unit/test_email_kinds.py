"""Every kind of email, built in every language, with and without a support address: both parts, nothing missing.

Driven by the kinds table, so a new kind (or a new mailed status) is covered by construction.
"""

import itertools
from email.message import EmailMessage as MimeMessage

import pytest

from tests.builders import make_order, named_links
from webapp.i18n import LOCALES, translate
from webapp.notifications.emails import compose
from webapp.notifications.kinds import MAILED_STATUSES
from webapp.notifications.models import EmailMessage
from webapp.orders.statuses import status_info
from webapp.rendering import make_environment

SUPPORT = "help@cashout.example"
ENV = make_environment()
LINKS = named_links("https://cashout.example")
ORDER_ID = "5f0c4a52-9a27-4b0e-8d53-3c1d2f6a7b8e"
CASES = list(itertools.product(MAILED_STATUSES.items(), LOCALES, [SUPPORT, ""]))


def build(status: str, kind: str, locale: str, support: str) -> tuple[MimeMessage, str, str]:
    order = make_order(
        user_id=1, email="person@example.com", status=status, locale=locale, id=7, external_order_id=ORDER_ID
    )
    message = EmailMessage(
        id=3, order_id=7, kind=kind, status=status, recipient="person@example.com", locale=locale, state="pending"
    )
    mail = compose(
        message,
        order,
        env=ENV,
        sender="Cash-out <cashout@example.com>",
        links=LINKS,
        support_contact=support,
    )
    text_part, html_part = mail.iter_parts()
    return mail, text_part.get_content(), html_part.get_content()


@pytest.mark.parametrize(
    ("mailed", "locale", "support"),
    CASES,
    ids=[f"{status.value}-{locale}-{'support' if support else 'none'}" for (status, _), locale, support in CASES],
)
def test_every_kind_builds_in_every_language(mailed: tuple, locale: str, support: str) -> None:
    status, kind = mailed
    mail, text, html = build(status.value, kind.name, locale, support)
    headline = translate(locale, status_info(status.value).headline)
    assert mail["Content-Language"] == locale
    assert headline in text and headline in html
    order_link = "https://cashout.example/orders.detail/" + ORDER_ID
    assert order_link in text and f'href="{order_link}"' in html
    assert f'<html lang="{locale}' in html
    for part in (text, html):
        assert "None" not in part and "Undefined" not in part
    names_support = kind.name == "failed" and bool(support)
    assert (SUPPORT in text) is names_support  # only the failure tells the person whom to ask
    assert (f'href="mailto:{SUPPORT}?subject=' in html) is names_support
    if names_support:
        assert translate(locale, "Support:") in text
