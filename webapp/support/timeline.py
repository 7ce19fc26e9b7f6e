"""One order's whole story for support, merged and time-ordered: events, transitions, IPNs, emails, audit rows."""

from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_datetime
from babel.numbers import format_currency
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.i18n import BABEL_LOCALES, DEFAULT_LOCALE, LOCALES, N_, translate
from webapp.ipn.models import IpnReceipt
from webapp.notifications.models import EmailMessage
from webapp.orders.models import Order, OrderEvent, OrderTransition
from webapp.orders.statuses import status_info
from webapp.support.audit import AuditEntry
from webapp.templating import DISPLAY_TIMEZONE

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
RECEIPT_ATTENTION = ("mismatch", "parked", "error", "bad_signature", "malformed")


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


async def receipts_needing_attention(session: AsyncSession, limit: int = 20) -> list[IpnReceipt]:
    """Notifications whose processing failed or was parked and that nobody has reviewed yet, newest first."""
    query = (
        select(IpnReceipt)
        .where(col(IpnReceipt.verdict).in_(("parked", "error")), col(IpnReceipt.reviewed_at).is_(None))
        .order_by(col(IpnReceipt.id).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def order_receipts(session: AsyncSession, order: Order) -> list[IpnReceipt]:
    query = select(IpnReceipt).where(IpnReceipt.external_order_id == order.external_order_id)
    return list((await session.exec(query.order_by(col(IpnReceipt.id)))).all())


async def timeline(session: AsyncSession, order: Order) -> list[TimelineItem]:
    order_id = order.id or 0
    items: list[TimelineItem] = []
    for event in (await session.exec(select(OrderEvent).where(OrderEvent.order_id == order_id))).all():
        items.append(
            TimelineItem(
                event.at,
                "event",
                EVENT_TITLES.get(event.kind, event.kind),
                event.detail,
                event.source,
                attention=event.kind in ("mismatch", "disagreement"),
            )
        )
    for transition in (await session.exec(select(OrderTransition).where(OrderTransition.order_id == order_id))).all():
        items.append(
            TimelineItem(
                transition.at,
                "transition",
                f"{transition.from_status} → {transition.to_status}",
                transition.note,
                transition.source,
            )
        )
    for receipt in await order_receipts(session, order):
        items.append(
            TimelineItem(
                receipt.received_at,
                "receipt",
                receipt.provider_status or "",
                receipt.last_error or "",
                "ipn",
                receipt=receipt,
                attention=receipt.verdict in RECEIPT_ATTENTION and receipt.reviewed_at is None,
            )
        )
    for entry in (await session.exec(select(AuditEntry).where(AuditEntry.order_id == order_id))).all():
        items.append(TimelineItem(entry.at, "audit", entry.action, entry.detail, "manual", audit=entry))
    for message in (await session.exec(select(EmailMessage).where(EmailMessage.order_id == order_id))).all():
        items.append(
            TimelineItem(
                message.sent_at or message.created_at,
                "email",
                message.kind,
                message.last_error,
                attention=message.state in EMAIL_ATTENTION,
                email=message,
            )
        )
    order_of_kinds = {"event": 0, "transition": 1, "receipt": 2, "email": 3, "audit": 4}
    return sorted(items, key=lambda item: (item.at, order_of_kinds[item.kind]))


def copy_summary(order: Order, items: list[TimelineItem], *, email: str, account: str) -> str:
    """A plain-text block an agent pastes into a reply: in the customer's language, personal data as shown."""
    locale = order.locale if order.locale in LOCALES else DEFAULT_LOCALE
    babel_locale = BABEL_LOCALES[locale]

    def when(value: datetime) -> str:
        return format_datetime(value, "short", tzinfo=DISPLAY_TIMEZONE, locale=babel_locale)

    lines = [
        translate(locale, "Order %(order)s", order=order.external_order_id),
        translate(locale, "Status: %(status)s", status=translate(locale, status_info(order.status).label)),
        translate(
            locale,
            "Amount: %(amount)s to %(bank)s %(account)s",
            amount=format_currency(order.fiat_amount, "VND", locale=babel_locale),
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
