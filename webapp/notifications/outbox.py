"""Mails owed, added to the outbox in the transaction of the status change they report.

Nothing is read here (the hot path of an IPN only gains one row, written with the others): the person's preference
and the mail's content are settled when it is sent. Orders placed through a partner's page are not mailed: the
partner hears of every change by webhook and speaks to its own users.
"""

from sqlalchemy import insert

from webapp.notifications.kinds import MAILED_STATUSES
from webapp.notifications.models import EmailMessage
from webapp.orders.events import StatusChanged, UnitWriter
from webapp.orders.statuses import OrderStatus

INSERT_EMAIL = insert(EmailMessage.__table__)


async def queue_status_email(change: StatusChanged, unit: UnitWriter) -> None:
    """A status subscriber: the mail owed for this change, if its status is mailed and the order is our own."""
    order, status = change.order, change.status
    kind = MAILED_STATUSES.get(OrderStatus(status))
    if kind is None or order.partner_id is not None:
        return
    unit.add(
        INSERT_EMAIL,
        {
            "order_id": order.id,
            "kind": kind.name,
            "status": status,
            "recipient": order.user_email,
            "locale": order.locale,
        },
    )
