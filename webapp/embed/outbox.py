"""Partner webhook events, written in the transaction of the status change they report (the outbox).

One event per applied transition: a duplicate or stale notification changes no status, so it writes none.
"""

import json
import uuid

from sqlalchemy import bindparam, insert, select

from webapp.db import utcnow
from webapp.embed.events import event_type
from webapp.embed.models import Partner, WebhookEvent
from webapp.orders.events import StatusChanged, UnitWriter
from webapp.orders.models import Order
from webapp.orders.statuses import OrderStatus, status_info

EVENT_VERSION = 1


def event_body(event_id: str, kind: str, order: Order, previous: str, status: str) -> str:
    return json.dumps(
        {
            "v": EVENT_VERSION,
            "id": event_id,
            "type": kind,
            "created": utcnow().isoformat(),
            "data": {
                "orderId": order.external_order_id,
                "status": status,
                "previousStatus": previous,
                "final": status_info(status).final,
                "fiatAmount": order.fiat_amount,
                "fiatCurrency": "VND",
                "partnerUserId": order.partner_user_id,
            },
        },
        separators=(",", ":"),
    )


PARTNERS = Partner.__table__
WEBHOOK_URL = select(PARTNERS.c.webhook_url).where(PARTNERS.c.id == bindparam("partner_id"))
INSERT_EVENT = insert(WebhookEvent.__table__)


async def queue_partner_event(change: StatusChanged, unit: UnitWriter) -> None:
    """A status subscriber: the event for a partner's order in the outbox, if the partner takes webhooks."""
    order, previous, status = change.order, change.previous, change.status
    if order.partner_id is None:
        return
    if not (await unit.connection.execute(WEBHOOK_URL, {"partner_id": order.partner_id})).scalar():
        return
    event_id = f"evt_{uuid.uuid4().hex}"
    kind = event_type(status, first=previous == OrderStatus.CREATING)
    unit.add(
        INSERT_EVENT,
        {
            "event_id": event_id,
            "partner_id": order.partner_id,
            "order_id": order.id,
            "type": kind,
            "payload": event_body(event_id, kind, order, previous, status),
        },
    )
