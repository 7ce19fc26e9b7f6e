"""Support search: one box that recognises what was typed, filters, and keyset pages (stable while orders arrive).

What a typed text is taken for (every interpretation that fits is searched, each through an index):
- an email (contains `@`): the exact address, or every address starting with what was typed;
- a word of letters, digits and `._-+` without `@`: the start of an email address;
- a UUID, or its first 8+ characters: our `externalOrderId` (exactly, or by its start);
- digits: our order number (up to 9 digits), and accounts ending in them (4+ digits);
- a transfer content (`RUT TIEN 7Q2K9MXA` or just `7Q2K9MXA`), or Alix Pay's bank transfer content;
- a transaction hash (16+ hex digits, `0x` optional).
"""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from webapp.i18n import N_
from webapp.orders.models import Order, OrderEvent
from webapp.orders.statuses import FINAL_STATUSES, OrderStatus
from webapp.rendering import DISPLAY_TIMEZONE

PAGE_SIZE = 25
KIND_LABELS = {
    "email": N_("email address"),
    "email_start": N_("start of an email address"),
    "order_id": N_("order number"),
    "order_id_start": N_("start of an order number"),
    "order_number": N_("internal order number"),
    "account_end": N_("last digits of the account"),
    "transfer_content": N_("transfer content"),
    "bank_transfer_content": N_("Alix Pay's bank transfer content"),
    "tx_hash": N_("transaction hash"),
}
MAX_QUERY_CHARS = 200
DISAGREEMENT_KINDS = ("mismatch", "disagreement")

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
EMAIL_START = re.compile(r"[\w.+\-]+@?[\w.\-]*", re.ASCII)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UUID_START = re.compile(r"[0-9a-f]{8}[0-9a-f\-]{0,27}")
TRANSFER_CODE = re.compile(r"(?:RUT TIEN )?([A-Z2-9]{8})")
TX_HASH = re.compile(r"(?:0x)?[0-9a-f]{16,128}")


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    stuck: bool = False
    disagreement: bool = False
    after: str = ""
    """The keyset cursor: `<created_at ISO>_<id>` of the last row of the previous page."""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "SearchQuery":
        """From a URL's query string; anything malformed is dropped, never an error."""
        status = str(params.get("status", ""))
        return cls(
            text=" ".join(str(params.get("q", "")).split())[:MAX_QUERY_CHARS],
            status=status if status in OrderStatus.__members__ else "",
            date_from=_date(params.get("from")),
            date_to=_date(params.get("to")),
            stuck=str(params.get("stuck", "")) in ("1", "on", "true"),
            disagreement=str(params.get("disagreement", "")) in ("1", "on", "true"),
            after=str(params.get("after", ""))[:80],
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string that reproduces this search (for shareable URLs and the next page)."""
        query = replace(self, **changes)
        values = {
            "q": query.text,
            "status": query.status,
            "from": query.date_from.isoformat() if query.date_from else "",
            "to": query.date_to.isoformat() if query.date_to else "",
            "stuck": "1" if query.stuck else "",
            "disagreement": "1" if query.disagreement else "",
            "after": query.after,
        }
        return {name: value for name, value in values.items() if value}

    @property
    def is_empty(self) -> bool:
        return not any(self.params(after=""))


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Interpretation:
    """What the typed text was taken for, shown to the agent ("Searched as …")."""

    kinds: tuple[str, ...]
    condition: ColumnElement[bool] = field(repr=False)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def interpret(text: str) -> Interpretation:
    lowered, upper = text.lower(), text.upper()
    kinds: list[str] = []
    conditions: list[ColumnElement[bool]] = []

    def add(kind: str, condition: ColumnElement[bool]) -> None:
        kinds.append(kind)
        conditions.append(condition)

    if EMAIL.fullmatch(text):
        add("email", col(Order.user_email) == lowered)
    elif EMAIL_START.fullmatch(text) and not text.isdigit():
        add("email_start", col(Order.user_email).like(_escape_like(lowered) + "%", escape="\\"))
    if UUID.fullmatch(lowered):
        add("order_id", col(Order.external_order_id) == lowered)
    elif UUID_START.fullmatch(lowered):
        add("order_id_start", col(Order.external_order_id).like(_escape_like(lowered) + "%", escape="\\"))
    if text.isdigit() and text.isascii():
        if len(text) <= 9:
            add("order_number", col(Order.id) == int(text))
        if len(text) >= 4:
            add(
                "account_end",
                and_(col(Order.account_tail) == text[-4:], col(Order.account_number).like("%" + text)),
            )
    if match := TRANSFER_CODE.fullmatch(upper):
        add("transfer_content", col(Order.transfer_content) == f"RUT TIEN {match.group(1)}")
    if len(text) >= 4:
        add("bank_transfer_content", col(Order.provider_content) == upper)
    if TX_HASH.fullmatch(lowered):
        add("tx_hash", or_(col(Order.provider_tx_hash) == text, col(Order.provider_tx_hash) == lowered))
    return Interpretation(tuple(kinds), or_(*conditions) if conditions else false())


def day_start(day: date) -> datetime:
    """Midnight of `day` where the console shows its times (Vietnam): "placed today" is the agent's today."""
    return datetime.combine(day, time(), DISPLAY_TIMEZONE)


def filtered(query: SearchQuery, *, stuck_after: timedelta, now: datetime | None = None) -> SelectOfScalar[Order]:
    """Every condition of the search, without paging."""
    now = now or datetime.now(UTC)
    statement = select(Order)
    if query.text:
        statement = statement.where(interpret(query.text).condition)
    if query.status:
        statement = statement.where(col(Order.status) == query.status)
    if query.date_from:
        statement = statement.where(col(Order.created_at) >= day_start(query.date_from))
    if query.date_to:
        statement = statement.where(col(Order.created_at) < day_start(query.date_to + timedelta(days=1)))
    if query.stuck:
        statement = statement.where(
            col(Order.status).not_in([status.value for status in FINAL_STATUSES]),
            col(Order.updated_at) < now - stuck_after,
        )
    if query.disagreement:
        statement = statement.where(
            exists().where(col(OrderEvent.order_id) == Order.id, col(OrderEvent.kind).in_(DISAGREEMENT_KINDS))
        )
    return statement


def _cursor(order: Order) -> str:
    return f"{order.created_at.astimezone(UTC).isoformat()}_{order.id}"


def _after(statement: SelectOfScalar[Order], cursor: str) -> SelectOfScalar[Order]:
    at_text, _, id_text = cursor.rpartition("_")
    try:
        at, order_id = datetime.fromisoformat(at_text), int(id_text)
    except ValueError:
        return statement
    return statement.where(or_(col(Order.created_at) < at, and_(col(Order.created_at) == at, col(Order.id) < order_id)))


@dataclass(frozen=True)
class Page:
    orders: list[Order]
    next_after: str | None


async def search(session: AsyncSession, query: SearchQuery, *, stuck_after: timedelta, size: int = PAGE_SIZE) -> Page:
    """One page, newest first; `next_after` continues after its last row (new orders never shift the pages)."""
    statement = (
        _after(filtered(query, stuck_after=stuck_after), query.after)
        if query.after
        else filtered(query, stuck_after=stuck_after)
    )
    rows = list(
        (
            await session.exec(statement.order_by(col(Order.created_at).desc(), col(Order.id).desc()).limit(size + 1))
        ).all()
    )
    return Page(rows[:size], _cursor(rows[size - 1]) if len(rows) > size else None)


async def count(session: AsyncSession, query: SearchQuery, *, stuck_after: timedelta) -> int:
    statement = filtered(replace(query, after=""), stuck_after=stuck_after)
    return (await session.exec(select(func.count()).select_from(statement.subquery()))).one()


async def every_match(
    session: AsyncSession, query: SearchQuery, *, stuck_after: timedelta, batch: int = 500
) -> AsyncIterator[Order]:
    """Every matching order, newest first, fetched a batch at a time (for streaming exports)."""
    query = replace(query, after="")
    while True:
        page = await search(session, query, stuck_after=stuck_after, size=batch)
        for order in page.orders:
            yield order
        if page.next_after is None:
            return
        query = replace(query, after=page.next_after)
