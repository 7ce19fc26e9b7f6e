"""Mails owed, added to the outbox in the transaction of the status change they report.

Nothing is read here (the hot path of an IPN only gains one row, written with the others): the person's preference
and the mail's content are settled when it is sent. Orders placed through a partner's page are not mailed: the
partner hears of every change by webhook and speaks to its own users.
"""

from typing import TYPE_CHECKING

from sqlalchemy import insert

from webapp.notifications.kinds import MAILED_STATUSES
from webapp.notifications.models import EmailMessage
from webapp.orders.models import Order
from webapp.orders.statuses import OrderStatus

if TYPE_CHECKING:
    from webapp.orders.transitions import StatusChange

INSERT_EMAIL = insert(EmailMessage.__table__)


def queue_status_email(change: "StatusChange", order: Order, status: str) -> None:
    kind = MAILED_STATUSES.get(OrderStatus(status))
    if kind is None or order.partner_id is not None:
        return
    change.add(
        INSERT_EMAIL,
        {
            "order_id": order.id,
            "kind": kind.name,
            "status": status,
            "recipient": order.user_email,
            "locale": order.locale,
        },
    )
