"""Keyset pages of orders, newest first, for support's search and a person's own list alike.

Each page continues after the last row of the one before, so an order arriving meanwhile never shifts a page.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from webapp.orders.models import Order

NEWEST_FIRST = (col(Order.created_at).desc(), col(Order.id).desc())


@dataclass(frozen=True)
class Page:
    orders: list[Order]
    next_after: str | None
    """The cursor of the next page (None: this is the last)."""


def cursor_of(order: Order) -> str:
    """`<created_at ISO>_<id>`: where the next page starts."""
    return f"{order.created_at.astimezone(UTC).isoformat()}_{order.id}"


def after(statement: SelectOfScalar[Order], cursor: str) -> SelectOfScalar[Order]:
    """The rows after `cursor`; a malformed cursor is ignored (the first page), never an error."""
    at_text, _, id_text = cursor.rpartition("_")
    try:
        at, order_id = datetime.fromisoformat(at_text), int(id_text)
    except ValueError:
        return statement
    return statement.where(or_(col(Order.created_at) < at, and_(col(Order.created_at) == at, col(Order.id) < order_id)))


async def page_of(session: AsyncSession, statement: SelectOfScalar[Order], cursor: str, size: int) -> Page:
    """One page of `statement`'s orders, newest first, after `cursor`."""
    if cursor:
        statement = after(statement, cursor)
    rows = list((await session.exec(statement.order_by(*NEWEST_FIRST).limit(size + 1))).all())
    return Page(rows[:size], cursor_of(rows[size - 1]) if len(rows) > size else None)


def day_start(day: date, timezone: ZoneInfo) -> datetime:
    """Midnight of `day` where the reader lives: a date filter means the reader's day, not UTC's."""
    return datetime.combine(day, time(), timezone)
