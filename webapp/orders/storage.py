"""Fast SQL of the order hot paths, in one place: statements built once, and rows made the way the ORM loads them.

The owner of status changes (`transitions.py`) locks orders with these Core statements and writes in batches; an
order's page reads the order and its history in one round trip, a live update the changed orders' status cards in
one; placing an order (the confirm) and the review page's reads are Core statements too, all run by
`sql_runner.py` (on PostgreSQL by asyncpg itself). Everything else reads through the plain ORM. Figures:
docs/PERFORMANCE.md.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Executable, bindparam, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm.attributes import manager_of_class
from sqlmodel import SQLModel

from webapp.auth.session import CurrentUser
from webapp.orders.models import Order, OrderEvent, OrderTransition
from webapp.orders.status_card import StatusCard
from webapp.sql_runner import SqlRunner, among, in_transaction, standalone

Model = TypeVar("Model", bound=SQLModel)


def loaded(model: type[Model], values: Mapping[str, Any]) -> Model:
    """A row of `model` made the way SQLAlchemy's ORM loads one: a new instance, then its attributes at once.

    `Model(**values)` validates and fires an instrumentation event per column: ~60 µs an order, 30 times this.
    """
    instance: Model = manager_of_class(model).new_instance()
    instance.__dict__.update(values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    return instance


ORDERS = Order.__table__
UPDATE_ORDER = update(ORDERS).where(ORDERS.c.id == bindparam("order_id_"))
"""The changed columns come as the other parameters (one compiled statement per set of columns)."""
ORDER_COLUMNS = tuple(column.name for column in ORDERS.columns)
LOCK = {
    (key.name, skip_locked): sa_select(ORDERS).where(key == bindparam("key")).with_for_update(skip_locked=skip_locked)
    for key in (ORDERS.c.id, ORDERS.c.external_order_id)
    for skip_locked in (False, True)
}
TOUCH = {
    key.name: update(ORDERS).where(key == bindparam("key")).values(updated_at=ORDERS.c.updated_at)
    for key in (ORDERS.c.id, ORDERS.c.external_order_id)
}
"""Built once: statements of the hot path are looked up, not rebuilt per call."""
AMONG_EXTERNAL_IDS = among(ORDERS.c.external_order_id, "keys")
LOCK_MANY = sa_select(ORDERS).where(AMONG_EXTERNAL_IDS).order_by(ORDERS.c.id).with_for_update()
"""In id order, so two units locking overlapping sets take their locks in the same order."""
TOUCH_MANY = update(ORDERS).where(AMONG_EXTERNAL_IDS).values(updated_at=ORDERS.c.updated_at)
INSERT_TRANSITION = insert(OrderTransition.__table__)
INSERT_EVENT = insert(OrderEvent.__table__)
INSERT_ORDER = insert(ORDERS).returning(ORDERS.c.id)
SUBMITTED = sa_select(ORDERS).where(ORDERS.c.submission_id == bindparam("submission_id"))


async def insert_order(engine: AsyncEngine, order: Order, event: dict[str, Any]) -> tuple[Order, bool]:
    """Store a new order and the first event of its history in one transaction: (the order, its id set; True).

    When its submission was stored before (the unique `submission_id`: a second click, or a race), nothing is
    stored: (that order, False). Core statements on one connection: a confirm's ORM flush, identity map and commit
    cost ~1 ms more (docs/PERFORMANCE.md, order creation).
    """
    values = {name: getattr(order, name) for name in ORDER_COLUMNS if name != "id"}
    try:
        async with in_transaction(engine) as sql:
            order.id = (await sql.write(INSERT_ORDER, [values]))[0]["id"]
            await sql.write(INSERT_EVENT, [{**event, "order_id": order.id}])
    except IntegrityError:
        if (existing := await submitted(engine, order.submission_id)) is None:
            raise  # another constraint: not a second submission
        return existing, False
    return order, True


LATEST_ANSWERED = (
    sa_select(ORDERS)
    .where(ORDERS.c.created_at >= bindparam("since"), ORDERS.c.provider_status.is_not(None))
    .order_by(ORDERS.c.created_at.desc(), ORDERS.c.id.desc())
    .limit(1)
)
PLACED_FROM = sa_select(ORDERS.c.external_order_id).where(
    ORDERS.c.submission_id == bindparam("submission_id"), ORDERS.c.user_id == bindparam("user_id")
)


async def latest_answered(reader: AsyncEngine, *, since: datetime) -> Order | None:
    """The newest order created since `since` that Alix Pay has answered (its rate and fees, for an estimate)."""
    return await _first_order(reader, LATEST_ANSWERED, {"since": since})


async def placed_from(reader: AsyncEngine, submission_id: str, user: CurrentUser) -> str | None:
    """The id of the person's order a reviewed cash-out became once confirmed, if it was.

    Read rather than kept in the session at the confirm: one indexed read on the review page instead of a session
    write on every confirm (docs/PERFORMANCE.md, order creation).
    """
    async with standalone(reader) as sql:
        placed = await sql.scalars(PLACED_FROM, {"submission_id": submission_id, "user_id": user.id})
    return placed[0] if placed else None


async def submitted(engine: AsyncEngine, submission_id: str) -> Order | None:
    """The order a submission was stored as, if any."""
    return await _first_order(engine, SUBMITTED, {"submission_id": submission_id})


async def _first_order(engine: AsyncEngine, statement: Executable, parameters: dict[str, Any]) -> Order | None:
    """The first order row `statement` selects, outside a transaction."""
    async with standalone(engine) as sql:
        found = await sql.rows(statement, parameters)
    return loaded(Order, found[0]) if found else None


async def hold(
    sql: SqlRunner, query: Executable, params: dict[str, Any], *, touch: Executable
) -> Sequence[Mapping[str, Any]]:
    """The rows of `query` (a SELECT … FOR UPDATE), locked until the commit.

    SQLite has no row locks, and its transaction only begins at the first write: `touch`, a write that changes
    nothing, goes first, so the read happens under the database's write lock and the next unit waits for this
    one's commit.
    """
    if sql.dialect == "sqlite":
        await sql.write(touch, [params])
    return await sql.rows(query, params)


class Batch:
    """Rows a unit of work writes before its commit: one executemany per statement and set of columns, in order."""

    def __init__(self) -> None:
        self._orders: dict[int, dict[str, Any]] = {}
        """Columns changed per order id: one UPDATE per order, however many changes."""
        self._rows: dict[tuple[Executable, tuple[str, ...]], list[dict[str, Any]]] = {}

    def update_order(self, order_id: int, values: Mapping[str, Any]) -> None:
        self._orders.setdefault(order_id, {}).update(values)

    def add(self, statement: Executable, values: dict[str, Any]) -> None:
        """A row to write: an insert, or an update by bound parameters."""
        self._rows.setdefault((statement, tuple(sorted(values))), []).append(values)

    async def write(self, sql: SqlRunner) -> None:
        for order_id, values in self._orders.items():
            self.add(UPDATE_ORDER, {"order_id_": order_id, **values})
        self._orders.clear()
        for (statement, _columns), rows in self._rows.items():
            await sql.write(statement, rows)
        self._rows.clear()


@dataclass(frozen=True)
class OrderHistory:
    """An order with what its page shows of its past: every transition, and the IPNs flagged as not matching it."""

    order: Order
    transitions: list[OrderTransition]
    flags: list[OrderEvent]

    def card(self) -> StatusCard:
        return StatusCard(
            **{name: getattr(self.order, name) for name in CARD_FIELDS},
            reached=tuple((transition.to_status, transition.at) for transition in self.transitions),
            flagged=tuple(flag.at for flag in self.flags),
        )


CARD_FIELDS = ("external_order_id", "status", "fiat_amount", "rejection_message", "expires_at")
"""The order's columns its status card shows (with its transitions and flags)."""


FLAG_KIND = "mismatch"
_ORDER, _TRANSITION, _EVENT = Order.__table__, OrderTransition.__table__, OrderEvent.__table__  # type: ignore[attr-defined]
_OF_TRANSITION = "transition_"
FLAG_COUNT = (
    sa_select(func.count())
    .where(_EVENT.c.order_id == _ORDER.c.id, _EVENT.c.kind == FLAG_KIND)
    .scalar_subquery()
    .label("flag_count")
)
OWN_ORDER_WITH_TRANSITIONS = (
    sa_select(*_ORDER.c, *(column.label(_OF_TRANSITION + column.name) for column in _TRANSITION.c), FLAG_COUNT)
    .select_from(_ORDER.outerjoin(_TRANSITION, _TRANSITION.c.order_id == _ORDER.c.id))
    .where(_ORDER.c.external_order_id == bindparam("external_order_id"), _ORDER.c.user_id == bindparam("user_id"))
    .order_by(_TRANSITION.c.id)
)
"""Built once (a live order's page draws it after every change): the order and its transitions in one round trip,
with the count of its flags, which are rare and read by a second statement only when there are some."""
FLAGS = (
    sa_select(_EVENT)
    .where(_EVENT.c.order_id == bindparam("order_id"), _EVENT.c.kind == FLAG_KIND)
    .order_by(_EVENT.c.id)
)


async def own_order_history(reader: AsyncEngine, external_order_id: str, user: CurrentUser) -> OrderHistory | None:
    """The person's order and its history, or None when it is not theirs (as good as absent: a 404)."""
    return await order_history(reader, external_order_id, user_id=user.id)


async def order_history(reader: AsyncEngine, external_order_id: str, *, user_id: int) -> OrderHistory | None:
    """The order of `user_id` and its history (what its page shows), or None.

    `reader` is an `autocommit` engine: no transaction is opened around the read (flags, read by a second
    statement only when there are some, can only have grown since the first).
    """
    async with standalone(reader) as sql:
        rows = await sql.rows(OWN_ORDER_WITH_TRANSITIONS, {"external_order_id": external_order_id, "user_id": user_id})
        if not rows:
            return None
        first = rows[0]
        order = loaded(Order, {column.name: first[column.name] for column in _ORDER.c})
        flags = []
        if first["flag_count"]:
            flags = [loaded(OrderEvent, row) for row in await sql.rows(FLAGS, {"order_id": order.id})]
    transitions = [
        loaded(OrderTransition, {column.name: row[_OF_TRANSITION + column.name] for column in _TRANSITION.c})
        for row in rows
        if row[_OF_TRANSITION + "id"] is not None
    ]
    return OrderHistory(order, transitions, flags)


CARD_COLUMNS = (_ORDER.c.id, *(_ORDER.c[name] for name in CARD_FIELDS))
STATUS_CARDS = (
    sa_select(*CARD_COLUMNS, _TRANSITION.c.to_status, _TRANSITION.c.at, FLAG_COUNT)
    .select_from(_ORDER.outerjoin(_TRANSITION, _TRANSITION.c.order_id == _ORDER.c.id))
    .where(among(_ORDER.c.id, "order_ids"))
    .order_by(_ORDER.c.id, _TRANSITION.c.id)
)
CARD_FLAGS = (
    sa_select(_EVENT.c.order_id, _EVENT.c.at)
    .where(among(_EVENT.c.order_id, "order_ids"), _EVENT.c.kind == FLAG_KIND)
    .order_by(_EVENT.c.id)
)


CARDS_PER_READ = 1024
"""Orders per statement at most. The publisher reads every order changed since its last read at once, which a
reconciliation or a slow moment of the database can make many, and a list goes as up to twice its length in
parameters (`sql_runner.listed_length`), PostgreSQL taking at most 32 767."""


async def status_cards(reader: AsyncEngine, order_ids: Collection[int]) -> dict[int, StatusCard]:
    """The status cards of these orders by id, for a live update after a commit (`orders/live.py::LivePublisher`).

    One round trip for up to `CARDS_PER_READ` orders, and a second when some were flagged.
    """
    found: dict[int, dict[str, Any]] = {}
    wanted = list(order_ids)
    async with standalone(reader) as sql:
        for first in range(0, len(wanted), CARDS_PER_READ):
            for row in await sql.rows(STATUS_CARDS, {"order_ids": wanted[first : first + CARDS_PER_READ]}):
                order = found.get(row["id"])
                if order is None:
                    order = found[row["id"]] = {**row, "reached": [], "flagged": []}
                if row["to_status"] is not None:
                    order["reached"].append((row["to_status"], row["at"]))
        flagged = [order_id for order_id, order in found.items() if order["flag_count"]]
        for first in range(0, len(flagged), CARDS_PER_READ):
            for row in await sql.rows(CARD_FLAGS, {"order_ids": flagged[first : first + CARDS_PER_READ]}):
                found[row["order_id"]]["flagged"].append(row["at"])
    return {
        order_id: StatusCard(
            **{name: order[name] for name in CARD_FIELDS},
            reached=tuple(order["reached"]),
            flagged=tuple(order["flagged"]),
        )
        for order_id, order in found.items()
    }
