"""What the partner API answers: orders as a partner's server sees them (the webhooks' words), and pages of them.

The USDT side is `embed/outbox.py::token_part`, the webhooks' own, so an order read here and its webhook agree.
"""

import base64
import binascii
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec
from msgspec import Struct

from webapp.db import in_utc
from webapp.embed.models import WebhookAttempt, WebhookEvent
from webapp.embed.outbox import token_part
from webapp.orders.figures import order_figures
from webapp.orders.models import Order, OrderTransition
from webapp.orders.statuses import status_info


class TokenFigures(Struct, rename="camel"):
    """The USDT side as Alix Pay reported it: decimal strings (never floats); `total` = amount + fees."""

    currency: str
    amount: str
    rate: str | None
    system_fee: str | None
    processing_fee: str | None
    total: str | None
    reported_by: str


class Step(Struct, rename="camel"):
    """One change of status: from what, to what, when, and what brought it (create, ipn, poll, manual)."""

    previous_status: str
    status: str
    at: datetime
    source: str


class OrderSummary(Struct, rename="camel"):
    id: str
    """Our order id: `orderId` in webhooks and the embedded page's messages."""
    status: str
    final: bool
    outcome: str
    """pending | succeeded | failed"""
    fiat_amount: int
    fiat_currency: str
    token: TokenFigures | None
    partner_user_id: str | None
    partner_reference: str | None
    created_at: datetime
    updated_at: datetime


class OrderDetail(OrderSummary, rename="camel"):
    timeline: list[Step]
    """Every change of status, oldest first."""


class Attempt(Struct, rename="camel"):
    """One try to deliver an event: when, your server's HTTP status (null: no answer), what went wrong, how long."""

    at: datetime
    status_code: int | None
    error: str
    duration_ms: int


class EventState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    GAVE_UP = "gave_up"


class EventView(Struct, rename="camel"):
    """A webhook event we owe you, with every attempt to deliver it; `payload` is the exact body we sign and send."""

    id: str
    type: str
    order_id: str
    state: str
    """pending | delivered | gave_up"""
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[Attempt]
    payload: dict[str, Any]


class EventPage(Struct, rename="camel"):
    events: list[EventView]
    next_cursor: str | None
    """Pass as `cursor` for the next (older) page; null on the last."""


class OrderPage(Struct, rename="camel"):
    orders: list[OrderSummary]
    next_cursor: str | None
    """Pass as `cursor` for the next (older) page; null on the last."""


def _summary_fields(order: Order) -> dict[str, Any]:
    info = status_info(order.status)
    token = token_part(order_figures(order))
    return {
        "id": order.external_order_id,
        "status": order.status,
        "final": info.final,
        "outcome": info.outcome.value,
        "fiat_amount": order.fiat_amount,
        "fiat_currency": "VND",
        "token": msgspec.convert(token, TokenFigures) if token else None,
        "partner_user_id": order.partner_user_id,
        "partner_reference": order.partner_reference,
        "created_at": in_utc(order.created_at),
        "updated_at": in_utc(order.updated_at),
    }


def order_summary(order: Order) -> OrderSummary:
    return OrderSummary(**_summary_fields(order))


def order_detail(order: Order, transitions: list[OrderTransition]) -> OrderDetail:
    timeline = [Step(step.from_status, step.to_status, in_utc(step.at), step.source) for step in transitions]
    return OrderDetail(**_summary_fields(order), timeline=timeline)


def event_view(event: WebhookEvent, order_id: str, attempts: list[WebhookAttempt]) -> EventView:
    return EventView(
        id=event.event_id,
        type=event.type,
        order_id=order_id,
        state=event.state,
        created_at=in_utc(event.created_at),
        delivered_at=in_utc(event.delivered_at) if event.delivered_at else None,
        attempts=[
            Attempt(in_utc(attempt.at), attempt.status_code, attempt.error, attempt.duration_ms) for attempt in attempts
        ],
        payload=json.loads(event.payload),
    )


def cursor_of(last_id: int) -> str:
    """An opaque cursor: where the next page starts (keyset, newest first, so pages never shift or repeat)."""
    return base64.urlsafe_b64encode(f"o{last_id}".encode()).decode().rstrip("=")


def id_of_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(text[1:]) if text.startswith("o") and text[1:].isdigit() and len(text) < 20 else None
