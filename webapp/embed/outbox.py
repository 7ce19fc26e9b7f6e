"""Partner webhook events, written in the transaction of the status change they report (the outbox).

One event per applied transition: a duplicate or stale notification changes no status, so it writes none.
"""

import json
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select

from webapp.db import utcnow
from webapp.embed.events import event_type
from webapp.embed.models import Partner, WebhookEvent
from webapp.orders.events import StatusChanged, StatusSubscriber, UnitWriter
from webapp.orders.figures import TOKEN_PLACES, Figures, reported_figures
from webapp.orders.statuses import OrderStatus, status_info

EVENT_VERSION = 1


def _places(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(TOKEN_PLACES))


def token_part(figures: Figures) -> dict[str, Any] | None:
    """The USDT side as Alix Pay reported it (decimal strings, never floats); None until it has reported one."""
    if figures.token_amount is None:
        return None
    return {
        "currency": figures.token,
        "amount": _places(figures.token_amount),
        "rate": None if figures.rate is None else str(figures.rate),
        "systemFee": _places(figures.system_fee),
        "processingFee": _places(figures.processing_fee),
        "total": _places(figures.total),
        "reportedBy": "alixpay",
    }


def event_body(event_id: str, kind: str, change: StatusChanged, *, test: bool) -> str:
    order = change.order
    figures = reported_figures(order.fiat_amount, change.reported or order.provider_order)
    return json.dumps(
        {
            "v": EVENT_VERSION,
            "id": event_id,
            "type": kind,
            "created": utcnow().isoformat(),
            "test": test,
            "data": {
                "orderId": order.external_order_id,
                "status": change.status,
                "previousStatus": change.previous,
                "final": status_info(change.status).final,
                "fiatAmount": order.fiat_amount,
                "fiatCurrency": "VND",
                "token": token_part(figures),
                "partnerUserId": order.partner_user_id,
                "partnerReference": order.partner_reference,
            },
        },
        separators=(",", ":"),
    )


PARTNERS = Partner.__table__
WEBHOOK_URL = select(PARTNERS.c.webhook_url).where(PARTNERS.c.id == bindparam("partner_id"))
INSERT_EVENT = insert(WebhookEvent.__table__)


def partner_events(*, test: bool) -> StatusSubscriber:
    """The status subscriber that puts a partner's order event in the outbox, if the partner takes webhooks.

    `test`: the events say they concern no real money (every stack but production's, the sandbox-backed one).
    """

    async def queue_partner_event(change: StatusChanged, unit: UnitWriter) -> None:
        order, previous = change.order, change.previous
        if order.partner_id is None:
            return
        if not any(await unit.sql.scalars(WEBHOOK_URL, {"partner_id": order.partner_id})):
            return
        event_id = f"evt_{uuid.uuid4().hex}"
        kind = event_type(change.status, first=previous == OrderStatus.CREATING)
        unit.add(
            INSERT_EVENT,
            {
                "event_id": event_id,
                "partner_id": order.partner_id,
                "order_id": order.id,
                "type": kind,
                "payload": event_body(event_id, kind, change, test=test),
            },
        )

    return queue_partner_event
