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
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, false, or_
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from webapp.config import Settings
from webapp.i18n import N_
from webapp.orders.keyset import Page, day_start, page_of
from webapp.orders.models import Order, OrderEvent, stuck
from webapp.orders.statuses import OrderStatus
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
    statuses: tuple[str, ...] = ()
    """Any of these statuses (none: every status)."""
    date_from: date | None = None
    date_to: date | None = None
    stuck: bool = False
    disagreement: bool = False
    after: str = ""
    """The keyset cursor: `<created_at ISO>_<id>` of the last row of the previous page."""

    @classmethod
    def from_params(cls, pairs: Iterable[tuple[str, Any]]) -> "SearchQuery":
        """From a query string's pairs (a name may repeat: `status`); anything malformed is dropped, never an error."""
        params: dict[str, str] = {}
        statuses: list[str] = []
        for name, value in pairs:
            if name == "status":
                statuses.append(str(value))
            else:
                params.setdefault(name, str(value))
        return cls(
            text=" ".join(params.get("q", "").split())[:MAX_QUERY_CHARS],
            statuses=tuple(status.value for status in OrderStatus if status.value in statuses),
            date_from=_date(params.get("from")),
            date_to=_date(params.get("to")),
            stuck=params.get("stuck", "") in ("1", "on", "true"),
            disagreement=params.get("disagreement", "") in ("1", "on", "true"),
            after=params.get("after", "")[:80],
        )

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The query string's pairs that reproduce this search (for shareable URLs, the next page, hidden fields)."""
        query = replace(self, **changes)
        values = [
            ("q", query.text),
            *(("status", status) for status in query.statuses),
            ("from", query.date_from.isoformat() if query.date_from else ""),
            ("to", query.date_to.isoformat() if query.date_to else ""),
            ("stuck", "1" if query.stuck else ""),
            ("disagreement", "1" if query.disagreement else ""),
            ("after", query.after),
        ]
        return [(name, value) for name, value in values if value]

    @property
    def is_empty(self) -> bool:
        return not self.params(after="")


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


@dataclass(frozen=True)
class Console:
    """What the console's settings decide for a search: when an order is stuck, and whose days its dates are."""

    stuck_after: timedelta = timedelta(hours=1)
    timezone: ZoneInfo = DISPLAY_TIMEZONE

    @classmethod
    def of(cls, settings: Settings) -> "Console":
        return cls(timedelta(minutes=settings.support_stuck_after_minutes), settings.console_timezone)

    def day_start(self, day: date) -> datetime:
        """Midnight of `day` in the console's time zone: "placed today" is the agent's today."""
        return day_start(day, self.timezone)


def filtered(query: SearchQuery, *, console: Console, now: datetime | None = None) -> SelectOfScalar[Order]:
    """Every condition of the search, without paging."""
    now = now or datetime.now(UTC)
    statement = select(Order)
    if query.text:
        statement = statement.where(interpret(query.text).condition)
    if query.statuses:
        statement = statement.where(col(Order.status).in_(query.statuses))
    if query.date_from:
        statement = statement.where(col(Order.created_at) >= console.day_start(query.date_from))
    if query.date_to:
        statement = statement.where(col(Order.created_at) < console.day_start(query.date_to + timedelta(days=1)))
    if query.stuck:
        statement = statement.where(stuck(console.stuck_after, now))
    if query.disagreement:
        statement = statement.where(
            exists().where(col(OrderEvent.order_id) == Order.id, col(OrderEvent.kind).in_(DISAGREEMENT_KINDS))
        )
    return statement


async def search(session: AsyncSession, query: SearchQuery, *, console: Console, size: int = PAGE_SIZE) -> Page:
    """One page, newest first; `next_after` continues after its last row (new orders never shift the pages)."""
    return await page_of(session, filtered(query, console=console), query.after, size)


async def count(session: AsyncSession, query: SearchQuery, *, console: Console) -> int:
    statement = filtered(replace(query, after=""), console=console)
    return (await session.exec(select(func.count()).select_from(statement.subquery()))).one()


async def every_match(
    session: AsyncSession, query: SearchQuery, *, console: Console, batch: int = 500
) -> AsyncIterator[Order]:
    """Every matching order, newest first, fetched a batch at a time (for streaming exports)."""
    query = replace(query, after="")
    while True:
        page = await search(session, query, console=console, size=batch)
        for order in page.orders:
            yield order
        if page.next_after is None:
            return
        query = replace(query, after=page.next_after)
