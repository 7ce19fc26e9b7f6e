"""One order's whole story for support, merged and time-ordered: events, transitions, IPNs, emails, audit rows."""

from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_datetime
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.audit import AuditEntry
from webapp.i18n import BABEL_LOCALES, N_, format_vnd, known_or_default, translate
from webapp.ipn.models import IpnReceipt
from webapp.notifications.models import EmailMessage
from webapp.orders.models import Order, OrderEvent, OrderTransition
from webapp.orders.statuses import status_info
from webapp.rendering import DISPLAY_TIMEZONE

EVENT_TITLES = {
    "create_request": N_("Order sent to Alix Pay"),
    "create_answer": N_("Alix Pay answered the order"),
    "poll": N_("Status check with Alix Pay"),
    "mismatch": N_("Disagreement: not applied"),
    "disagreement": N_("Status check disagreed with what we knew"),
}
SOURCE_NAMES = {
    "create": N_("order creation"),
    "ipn": N_("notification (IPN)"),
    "poll": N_("status check"),
    "manual": N_("support"),
}
EMAIL_STATES = {
    "pending": N_("waiting to be sent"),
    "sent": N_("sent"),
    "opted_out": N_("not sent: the person turned progress emails off"),
    "rejected": N_("refused by the mail server"),
    "gave_up": N_("not delivered after three days of trying"),
    "parked": N_("not sent: it could not be built; waiting for a person"),
}
EMAIL_ATTENTION = ("rejected", "gave_up", "parked")
"""A mail in one of these states was not delivered and will not be tried again unless a person sends it again."""
RECEIPT_ATTENTION = ("mismatch", "parked", "error")
"""A signed IPN that disagreed with the order, or one whose processing failed for good: a person looks until it is
reviewed. Bad signatures are not among them: anyone can send one, and they change nothing."""


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str
    """event | transition | receipt | email | audit"""
    title: str
    detail: str = ""
    source: str = ""
    receipt: IpnReceipt | None = None
    audit: AuditEntry | None = None
    email: EmailMessage | None = None
    attention: bool = False
    """Shown highlighted: something a person should look at."""


async def order_receipts(session: AsyncSession, order: Order) -> list[IpnReceipt]:
    query = select(IpnReceipt).where(IpnReceipt.external_order_id == order.external_order_id)
    return list((await session.exec(query.order_by(col(IpnReceipt.id)))).all())


def _event_item(event: OrderEvent) -> TimelineItem:
    title = EVENT_TITLES.get(event.kind, event.kind)
    attention = event.kind in ("mismatch", "disagreement")
    return TimelineItem(event.at, "event", title, event.detail, event.source, attention=attention)


def _transition_item(transition: OrderTransition) -> TimelineItem:
    title = f"{transition.from_status} → {transition.to_status}"
    return TimelineItem(transition.at, "transition", title, transition.note, transition.source)


def _receipt_item(receipt: IpnReceipt) -> TimelineItem:
    attention = receipt.verdict in RECEIPT_ATTENTION and receipt.reviewed_at is None
    title, detail = receipt.provider_status or "", receipt.last_error or ""
    return TimelineItem(receipt.received_at, "receipt", title, detail, "ipn", receipt=receipt, attention=attention)


def _audit_item(entry: AuditEntry) -> TimelineItem:
    return TimelineItem(entry.at, "audit", entry.action, entry.detail, "manual", audit=entry)


def _email_item(message: EmailMessage) -> TimelineItem:
    at, attention = message.sent_at or message.created_at, message.state in EMAIL_ATTENTION
    return TimelineItem(at, "email", message.kind, message.last_error, attention=attention, email=message)


KIND_ORDER = {"event": 0, "transition": 1, "receipt": 2, "email": 3, "audit": 4}
"""Of two things at the same instant, which is told first."""


async def timeline(session: AsyncSession, order: Order) -> list[TimelineItem]:
    order_id = order.id or 0
    events = (await session.exec(select(OrderEvent).where(OrderEvent.order_id == order_id))).all()
    transitions = (await session.exec(select(OrderTransition).where(OrderTransition.order_id == order_id))).all()
    entries = (await session.exec(select(AuditEntry).where(AuditEntry.order_id == order_id))).all()
    messages = (await session.exec(select(EmailMessage).where(EmailMessage.order_id == order_id))).all()
    items = [
        *map(_event_item, events),
        *map(_transition_item, transitions),
        *map(_receipt_item, await order_receipts(session, order)),
        *map(_audit_item, entries),
        *map(_email_item, messages),
    ]
    return sorted(items, key=lambda item: (item.at, KIND_ORDER[item.kind]))


def copy_summary(order: Order, items: list[TimelineItem], *, email: str, account: str) -> str:
    """A plain-text block an agent pastes into a reply: in the customer's language, personal data as shown."""
    locale = known_or_default(order.locale)
    babel_locale = BABEL_LOCALES[locale]

    def when(value: datetime) -> str:
        return format_datetime(value, "short", tzinfo=DISPLAY_TIMEZONE, locale=babel_locale)

    lines = [
        translate(locale, "Order %(order)s", order=order.external_order_id),
        translate(locale, "Status: %(status)s", status=translate(locale, status_info(order.status).label)),
        translate(
            locale,
            "Amount: %(amount)s to %(bank)s %(account)s",
            amount=format_vnd(order.fiat_amount, locale),
            bank=order.bank_name,
            account=account,
        ),
        translate(locale, "Customer: %(email)s", email=email),
        translate(locale, "Transfer content: %(content)s", content=order.transfer_content),
        translate(locale, "Placed: %(time)s", time=when(order.created_at)),
        translate(locale, "Last change: %(time)s", time=when(order.updated_at)),
        translate(
            locale, "Notifications from Alix Pay: %(count)s", count=sum(item.receipt is not None for item in items)
        ),
    ]
    if order.provider_tx_hash:
        lines.append(translate(locale, "Transaction: %(hash)s", hash=order.provider_tx_hash))
    return "\n".join(lines)
