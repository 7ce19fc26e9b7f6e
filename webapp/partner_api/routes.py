"""`/api/partner/v1/`: a partner's server reads its orders with an API key (JSON, no cookies, no CSRF).

Every answer is JSON; every refusal a problem document (`problems.py`). A partner sees only its own orders: another
partner's order is "not found", the same as one that does not exist.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeAlias

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from webapp.db import Sessionmaker
from webapp.embed.models import Partner, WebhookEvent
from webapp.embed.webhooks import WebhookSender, attempts_of
from webapp.orders.models import Order, OrderTransition
from webapp.orders.statuses import OrderStatus
from webapp.partner_api.keys import partner_of_key
from webapp.partner_api.problems import Problem, problem_responses
from webapp.partner_api.views import (
    EventPage,
    EventState,
    EventView,
    OrderDetail,
    OrderPage,
    cursor_of,
    event_view,
    id_of_cursor,
    order_detail,
    order_summary,
)

BEARER = {"WWW-Authenticate": 'Bearer realm="partner-api"'}
ApiPartner: TypeAlias = NamedDependency[Partner]
"""The partner whose API key the request carries (`api_partner`)."""


async def api_partner(request: Request[Any, Any, Any], db_sessionmaker: Sessionmaker) -> Partner:
    """The partner whose API key the request carries (`Authorization: Bearer cok_…`), else a 401 problem."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Problem("unauthorized", "send the API key as Authorization: Bearer <key>", BEARER)
    async with db_sessionmaker() as session, session.begin():
        found = await partner_of_key(session, presented.strip())
    if found is None:
        raise Problem("unauthorized", "this API key is unknown, revoked, or its partner switched off", BEARER)
    return found[0]


@get("/orders/{order_id:str}", name="partner_api.order", responses=problem_responses(401, 404, 429))
async def get_order(partner: ApiPartner, db_sessionmaker: Sessionmaker, order_id: FromPath[str]) -> OrderDetail:
    """One of your orders by its id (`orderId` in webhooks), with its timeline and the USDT figures."""
    async with db_sessionmaker() as session:
        query = select(Order).where(Order.external_order_id == order_id[:64], Order.partner_id == partner.id)
        order = (await session.exec(query)).first()
        if order is None:
            raise Problem("not_found", "you have no order with this id")
        steps = select(OrderTransition).where(OrderTransition.order_id == order.id).order_by(col(OrderTransition.id))
        transitions = list((await session.exec(steps)).all())
    return order_detail(order, transitions)


Cursor: TypeAlias = Annotated[str | None, QueryParameter(max_length=40)]
Limit: TypeAlias = Annotated[int, QueryParameter(ge=1, le=100)]


async def _keyset_page(
    session: AsyncSession, query: Select, id_column: Any, page: tuple[str | None, int], row_id: Callable[[Any], int]
) -> tuple[list[Any], str | None]:
    """One page (`cursor`, `limit`) of `query`'s rows, newest first; and the next page's cursor, if there is one.

    Keyset, not offset: a row added meanwhile never shifts a page, so none is seen twice or missed.
    """
    cursor, limit = page
    if cursor is not None:
        before = id_of_cursor(cursor)
        if before is None:
            raise Problem("invalid_request", "cursor: not one this API gave")
        query = query.where(id_column < before)
    rows = list((await session.exec(query.order_by(id_column.desc()).limit(limit + 1))).all())
    return rows[:limit], cursor_of(row_id(rows[limit - 1])) if len(rows) > limit else None


@get("/orders", name="partner_api.orders", responses=problem_responses(400, 401, 429))
async def list_orders(
    partner: ApiPartner,
    db_sessionmaker: Sessionmaker,
    status: FromQuery[OrderStatus | None] = None,
    created_after: FromQuery[datetime | None] = None,
    partner_reference: Annotated[str | None, QueryParameter(max_length=64)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> OrderPage:
    """Your orders, newest first, a page at a time (`nextCursor`), filtered by status, creation time or reference."""
    query = select(Order).where(Order.partner_id == partner.id)
    if status is not None:
        query = query.where(Order.status == status.value)
    if created_after is not None:
        if created_after.tzinfo is None:
            raise Problem("invalid_request", "created_after: give a time zone (2026-12-05T00:00:00Z)")
        query = query.where(col(Order.created_at) > created_after)
    if partner_reference is not None:
        query = query.where(Order.partner_reference == partner_reference)
    async with db_sessionmaker() as session:
        orders, next_cursor = await _keyset_page(session, query, col(Order.id), (cursor, limit), lambda o: o.id)
    return OrderPage([order_summary(order) for order in orders], next_cursor)


@get("/events", name="partner_api.events", responses=problem_responses(400, 401, 429))
async def list_events(
    partner: ApiPartner,
    db_sessionmaker: Sessionmaker,
    order_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
    event_state: Annotated[EventState | None, QueryParameter(name="state")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> EventPage:
    """The webhook events we owe you, newest first, each with every attempt to deliver it."""
    query = _events_of(partner)
    if order_id is not None:
        query = query.where(Order.external_order_id == order_id)
    if event_state is not None:
        query = query.where(WebhookEvent.state == event_state.value)
    async with db_sessionmaker() as session:
        rows, next_cursor = await _keyset_page(session, query, col(WebhookEvent.id), (cursor, limit), lambda r: r[0].id)
        attempts = await attempts_of(session, [event.id or 0 for event, _ in rows])
    return EventPage([event_view(event, order, attempts.get(event.id or 0, [])) for event, order in rows], next_cursor)


def _events_of(partner: Partner) -> Select:
    """The partner's webhook events, each with the id of its order as the partner knows it."""
    return (
        select(WebhookEvent, Order.external_order_id)
        .join(Order, col(Order.id) == col(WebhookEvent.order_id))
        .where(WebhookEvent.partner_id == partner.id)
    )


@post(
    "/events/{event_id:str}/resend",
    name="partner_api.resend",
    status_code=202,
    responses=problem_responses(401, 404, 429),
)
async def resend_event(
    partner: ApiPartner,
    db_sessionmaker: Sessionmaker,
    webhooks: NamedDependency[WebhookSender],
    event_id: FromPath[str],
) -> EventView:
    """Send one of your events again at once (the next delivery round), whatever became of it before."""
    query = _events_of(partner).where(WebhookEvent.event_id == event_id[:40])
    async with db_sessionmaker() as session, session.begin():
        found = (await session.exec(query)).first()
        if found is None:
            raise Problem("not_found", "you have no event with this id")
        event, order = found
        webhooks.send_again(event)
        attempts = await attempts_of(session, [event.id or 0])
        return event_view(event, order, attempts.get(event.id or 0, []))
