"""A person's own cash-outs: filters, a search box, keyset pages, and their history as CSV.

Filtered by outcome and date, searched by reference or recipient, paged by keyset (stable while an order
arrives), and downloaded as CSV: their orders only, numbers as their language writes them.
"""

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal
from sqlalchemy import ColumnElement, false, or_
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from webapp.csvfile import csv_stream
from webapp.i18n import BABEL_LOCALES, N_, translate
from webapp.orders.figures import order_figures
from webapp.orders.forms import normalise_name
from webapp.orders.keyset import Page, day_start, page_of
from webapp.orders.models import Order
from webapp.orders.statuses import STATUS_TABLE, Outcome, status_info
from webapp.rendering import DISPLAY_TIMEZONE

PAGE_SIZE = 10
OUTCOMES = {Outcome.PENDING: N_("In progress"), Outcome.SUCCEEDED: N_("Done"), Outcome.FAILED: N_("Failed")}
REFERENCE = re.compile(r"[0-9a-f][0-9a-f\-]{3,35}")


@dataclass(frozen=True)
class OwnOrdersQuery:
    text: str = ""
    """A reference (the order id's start), a recipient's name (accents optional) or account digits."""
    outcome: str = ""
    date_from: date | None = None
    date_to: date | None = None
    after: str = ""

    @classmethod
    def from_params(cls, params: Iterable[tuple[str, Any]]) -> "OwnOrdersQuery":
        """From a query string's pairs; anything malformed is dropped, never an error."""
        values = {name: str(value) for name, value in params}
        outcome = values.get("outcome", "")
        return cls(
            text=" ".join(values.get("q", "").split())[:100],
            outcome=outcome if outcome in OUTCOMES else "",
            date_from=_date(values.get("from")),
            date_to=_date(values.get("to")),
            after=values.get("after", "")[:80],
        )

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        query = replace(self, **changes)
        values = [
            ("q", query.text),
            ("outcome", query.outcome),
            ("from", query.date_from.isoformat() if query.date_from else ""),
            ("to", query.date_to.isoformat() if query.date_to else ""),
            ("after", query.after),
        ]
        return [(name, value) for name, value in values if value]

    @property
    def is_filtered(self) -> bool:
        return bool(self.params(after=""))


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _matching(text: str) -> ColumnElement[bool]:
    """What the box finds among the person's own orders (few, so a scan of them is cheap)."""
    lowered, digits, name = text.lower(), re.sub(r"[\s.\-]", "", text), normalise_name(text)
    found: list[ColumnElement[bool]] = []
    if REFERENCE.fullmatch(lowered):
        found.append(col(Order.external_order_id).startswith(lowered, autoescape=True))
    if digits.isdigit() and len(digits) >= 3:
        found.append(col(Order.account_number).contains(digits, autoescape=True))
    if name and not any(char.isdigit() for char in text):  # a reference's letters alone are not a name
        found.append(col(Order.recipient_name).contains(name, autoescape=True))
    return or_(*found) if found else false()


def own_orders(user_id: int, query: OwnOrdersQuery) -> SelectOfScalar[Order]:
    statement = select(Order).where(Order.user_id == user_id)
    if query.text:
        statement = statement.where(_matching(query.text))
    if query.outcome:
        statuses = [status.value for status, info in STATUS_TABLE.items() if info.outcome == query.outcome]
        statement = statement.where(col(Order.status).in_(statuses))
    if query.date_from:
        statement = statement.where(col(Order.created_at) >= day_start(query.date_from, DISPLAY_TIMEZONE))
    if query.date_to:
        statement = statement.where(
            col(Order.created_at) < day_start(query.date_to + timedelta(days=1), DISPLAY_TIMEZONE)
        )
    return statement


async def own_orders_page(session: AsyncSession, user_id: int, query: OwnOrdersQuery, size: int = PAGE_SIZE) -> Page:
    return await page_of(session, own_orders(user_id, query), query.after, size)


HISTORY_COLUMNS = (
    N_("Date"),
    N_("Reference"),
    N_("Status"),
    N_("Amount (VND)"),
    N_("Bank"),
    N_("Account number"),
    N_("Recipient's name"),
    N_("Transfer content"),
    N_("USDT for the payout"),
    N_("Rate"),
    N_("Fees"),
    N_("Total from the wallet"),
)


def history_row(order: Order, locale: str) -> list[str]:
    figures = order_figures(order)

    def number(value: int | Decimal | None) -> str:
        return "" if value is None else format_decimal(value, format="#,##0.######", locale=BABEL_LOCALES[locale])

    return [
        order.created_at.astimezone(DISPLAY_TIMEZONE).isoformat(timespec="seconds"),
        order.reference,
        translate(locale, status_info(order.status).label),
        number(order.fiat_amount),
        order.bank_name,
        order.account_number,
        order.recipient_name,
        order.transfer_content,
        number(figures.token_amount),
        number(figures.rate),
        number(figures.fees),
        number(figures.total),
    ]


async def history_csv(
    db_sessionmaker: async_sessionmaker[AsyncSession], user_id: int, query: OwnOrdersQuery, locale: str
) -> AsyncIterator[str]:
    """The person's orders that match `query`, every page of them, as CSV in their language."""

    async def rows() -> AsyncIterator[list[str]]:
        cursor: str | None = ""
        async with db_sessionmaker() as session:
            while cursor is not None:
                page = await page_of(session, own_orders(user_id, query), cursor, 500)
                for order in page.orders:
                    yield history_row(order, locale)
                cursor = page.next_after

    async for line in csv_stream([translate(locale, column) for column in HISTORY_COLUMNS], rows()):
        yield line
