"""One outbox row as the mail the person receives: subject, plain text and HTML, in their language."""

from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime as rfc2822_date
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment

from webapp.db import utcnow
from webapp.i18n import format_vnd, known_or_default, translate
from webapp.notifications.kinds import KINDS
from webapp.notifications.models import EmailMessage
from webapp.orders.figures import order_figures
from webapp.orders.forms import mask_account
from webapp.orders.models import Order
from webapp.orders.statuses import status_info
from webapp.rendering import render_fragment


def subject_of(message: EmailMessage, order: Order) -> str:
    locale = known_or_default(message.locale)
    amount = format_vnd(order.fiat_amount, locale)
    return translate(locale, KINDS[message.kind].subject, reference=order.reference, amount=amount)


@dataclass(frozen=True)
class PublicLinks:
    """Absolute links to our pages by route name, for what people read outside a request (an email)."""

    base_url: str
    reverse: Callable[..., str]
    """The app's `route_reverse`: the path of a route by its name."""

    def __call__(self, route_name: str, **params: Any) -> str:
        return self.base_url.rstrip("/") + self.reverse(route_name, **params)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"


def message_id(message: EmailMessage, links: PublicLinks) -> str:
    """The same on every attempt: a mail client drops the copy of a mail that was sent twice."""
    return f"<cashout-{message.id}-{message.kind}@{links.host}>"


def compose(
    message: EmailMessage, order: Order, *, env: Environment, sender: str, links: PublicLinks, support_contact: str = ""
) -> MimeMessage:
    locale = known_or_default(message.locale)
    context = {
        "order": order,
        "kind": KINDS[message.kind],
        "status": status_info(message.status),
        "figures": order_figures(order),
        "masked_account": mask_account(order.account_number),
        "order_url": links("orders.detail", order_id=order.external_order_id),
        "preferences_url": links("account.notifications"),
        "support_address": support_contact,  # read by the template global `support_contact()`, never shadowing it
    }
    mail = MimeMessage()
    mail["Subject"] = subject_of(message, order)
    mail["From"] = sender
    mail["To"] = message.recipient
    mail["Date"] = rfc2822_date(utcnow())
    mail["Message-ID"] = message_id(message, links)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(render_fragment(env, "emails/status.txt", locale=locale, **context))
    mail.add_alternative(render_fragment(env, "emails/status.html", locale=locale, **context), subtype="html")
    mail["Content-Language"] = locale  # after the parts: setting content drops earlier Content-* headers
    return mail
