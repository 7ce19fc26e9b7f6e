"""The one owner of order status changes.

Every change of an order's status (after creation, an IPN, a reconciliation poll, later a support action) goes
through a `StatusChanges.unit()`: it decides with the pure state machine, writes the transition row and checks a
provider's order object against ours before applying it. It knows none of a change's consequences: its
subscribers (`orders/events.py`, registered in `services.py`) write theirs in the same transaction (a partner's
webhook event, the person's email) or hear of it after the commit (live updates).

It writes through `orders/storage.py` (SQL Core, not the ORM unit of work: this is the IPN's hot path,
docs/PERFORMANCE.md): what a unit writes is collected in a `Batch` and sent before its commit, so a unit that judges
many IPNs at once (`ipn/intake.py`) pays the round trips once. Nothing in a unit reads what it wrote itself.
"""

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Column, Executable

from webapp.alixpay.schemas import CRYPTO_CURRENCY, FIAT_CURRENCY, OrderObject
from webapp.db import Database, utcnow
from webapp.metrics import FLAGS, TRANSITIONS
from webapp.orders import phrases
from webapp.orders.events import CommitSubscriber, StatusChanged, StatusSubscriber
from webapp.orders.models import Order
from webapp.orders.state import Verdict, decide, from_provider
from webapp.orders.statuses import OrderStatus
from webapp.orders.storage import (
    INSERT_EVENT,
    INSERT_TRANSITION,
    LOCK,
    LOCK_MANY,
    ORDER_COLUMNS,
    ORDERS,
    TOUCH,
    TOUCH_MANY,
    Batch,
    hold,
    loaded,
)
from webapp.sql_runner import SqlRunner, in_transaction

logger = logging.getLogger(__name__)


def disagreements(order: Order, provider: OrderObject) -> list[str]:
    """Where a signed order object contradicts the order we created: such an object is never applied.

    The signature proves Alix Pay said it, not that it is about what we asked for (a bug on either side, or a
    replayed notification of another order with the same id in another environment).
    """
    found = []
    if provider.fiat_amount != order.fiat_amount:
        found.append(phrases.AMOUNT_DIFFERS(theirs=provider.fiat_amount, ours=order.fiat_amount))
    known_type = order.provider_order.get("type")
    if known_type and provider.type != known_type:
        found.append(phrases.TYPE_DIFFERS(theirs=repr(provider.type), ours=repr(known_type)))
    if provider.fiat_currency not in (None, FIAT_CURRENCY):
        found.append(phrases.FIAT_CURRENCY_DIFFERS(theirs=repr(provider.fiat_currency), ours=FIAT_CURRENCY))
    token_currency = provider.token_transfer.currency if provider.token_transfer else None
    if token_currency not in (None, CRYPTO_CURRENCY):
        found.append(phrases.TOKEN_CURRENCY_DIFFERS(theirs=repr(token_currency), ours=CRYPTO_CURRENCY))
    return found


def references(provider: OrderObject) -> dict[str, str]:
    """Alix Pay's references, for their indexed columns (support searches them)."""
    found = {}
    if provider.token_transfer and provider.token_transfer.tx_hash:
        found["provider_tx_hash"] = provider.token_transfer.tx_hash[:128]
    if provider.bank_transfer and provider.bank_transfer.content_payment:
        found["provider_content"] = provider.bank_transfer.content_payment[:64].upper()
    return found


class OrderUnit:
    """One unit of work on orders: what it changed is published after its commit."""

    def __init__(self, sql: SqlRunner, subscribers: Sequence[StatusSubscriber] = ()) -> None:
        self.sql = sql
        self._subscribers = subscribers
        self.changed: set[int] = set()
        self.applied: list[tuple[str, str]] = []
        """(new status, source) of every transition, counted once committed."""
        self.flagged: list[tuple[str, str]] = []
        self._batch = Batch()
        self._locked: dict[str, Order | None] = {}
        """Orders this unit holds (None: no such order), by external id: found again without a round trip, with
        what the unit changed on them."""

    async def lock(self, order_id: int, *, skip_locked: bool = False) -> Order | None:
        """The order row, locked until commit so an IPN and a poll never decide on the same state.

        With `skip_locked`, an order another unit holds is not waited for: None, as if absent (PostgreSQL).
        """
        return await self._lock_row(ORDERS.c.id, order_id, skip_locked=skip_locked)

    async def lock_by_external_id(self, external_order_id: str) -> Order | None:
        """`lock`, found by our id as Alix Pay knows it (one statement on PostgreSQL)."""
        if external_order_id in self._locked:
            return self._locked[external_order_id]
        return await self._lock_row(ORDERS.c.external_order_id, external_order_id)

    async def lock_all(self, external_order_ids: Sequence[str]) -> None:
        """Lock the orders of these external ids in one statement; `lock_by_external_id` then finds them."""
        wanted = sorted(set(external_order_ids) - self._locked.keys())
        if not wanted:
            return
        self._locked |= dict.fromkeys(wanted)
        for row in await self.hold(LOCK_MANY, {"keys": wanted}, touch=TOUCH_MANY):
            self._locked[row["external_order_id"]] = loaded(Order, row)

    async def hold(
        self, query: Executable, params: dict[str, Any], *, touch: Executable
    ) -> Sequence[Mapping[str, Any]]:
        """The rows of `query` (a SELECT … FOR UPDATE), locked until the commit (`storage.hold`)."""
        return await hold(self.sql, query, params, touch=touch)

    async def _lock_row(self, key: Column[Any], value: object, *, skip_locked: bool = False) -> Order | None:
        rows = await self.hold(LOCK[key.name, skip_locked], {"key": value}, touch=TOUCH[key.name])
        if not rows:
            return None
        order = loaded(Order, rows[0])
        self._locked[order.external_order_id] = order
        return order

    def update(self, order: Order, **values: Any) -> None:
        """Change columns of a locked order: set on the object now, written in one UPDATE before the commit."""
        for name, value in values.items():
            if name not in ORDER_COLUMNS:
                raise AttributeError(f"cashout_order has no column {name!r}")
            setattr(order, name, value)
        self._batch.update_order(order.id or 0, values)

    def add(self, statement: Executable, values: dict[str, Any]) -> None:
        """Write a row (an insert, or an update by bound parameters) with the others before the commit."""
        self._batch.add(statement, values)

    async def write(self) -> None:
        """Write the collected rows and order columns (the unit calls this before it commits)."""
        await self._batch.write(self.sql)

    async def apply_status(
        self,
        order: Order,
        target: OrderStatus,
        *,
        source: str,
        receipt_id: int | None = None,
        note: str = "",
        reported_after: timedelta | None = None,
        reported: dict[str, Any] | None = None,
    ) -> Verdict:
        verdict = decide(OrderStatus(order.status), target)
        if verdict is Verdict.APPLIED:
            self.add(
                INSERT_TRANSITION,
                {
                    "order_id": order.id,
                    "from_status": order.status,
                    "to_status": target.value,
                    "source": source,
                    "receipt_id": receipt_id,
                    "note": note,
                    "at": utcnow(),
                },
            )
            event = StatusChanged(order, order.status, target.value, source, reported_after, reported)
            for subscriber in self._subscribers:
                await subscriber(event, self)
            self.update(order, status=target.value, updated_at=utcnow())
            self.changed.add(order.id or 0)
            self.applied.append((target.value, source))
        return verdict

    async def apply_provider_order(
        self,
        order: Order,
        provider: OrderObject,
        *,
        source: str,
        receipt_id: int | None = None,
        note: str = "",
        reported_after: timedelta | None = None,
    ) -> Verdict:
        """Apply a verified order object, unless it contradicts the order or its status is unknown to us."""
        found = disagreements(order, provider)
        if found:
            self.flag(order, "mismatch", "; ".join(found), source=source, receipt_id=receipt_id)
            return Verdict.MISMATCH
        target = from_provider(provider.status)
        if target is None:
            self.update(order, provider_status=provider.status[:64])
            logger.warning("order %s: unknown Alix Pay status %r stored, not applied", order.id, provider.status[:64])
            return Verdict.UNKNOWN_STATUS
        wire = provider.to_wire()
        verdict = await self.apply_status(
            order,
            target,
            source=source,
            receipt_id=receipt_id,
            note=note,
            reported_after=reported_after,
            reported=wire,
        )
        if verdict is not Verdict.STALE:
            self.update(order, provider_status=provider.status[:64], provider_order=wire)
            self.update(order, **references(provider))
            if provider.expires_at is not None:
                self.update(order, expires_at=provider.expires_at)
        return verdict

    def record(self, order: Order, kind: str, detail: str, *, source: str, receipt_id: int | None = None) -> None:
        """Put something that happened to the order on its history (support's timeline shows every one)."""
        self.add(
            INSERT_EVENT,
            {
                "order_id": order.id,
                "kind": kind,
                "source": source,
                "receipt_id": receipt_id,
                "detail": detail,
                "at": utcnow(),
            },
        )
        self.changed.add(order.id or 0)

    def flag(self, order: Order, kind: str, detail: str, *, source: str, receipt_id: int | None = None) -> None:
        """Record something a person must look at, and say so at WARNING."""
        self.record(order, kind, detail, source=source, receipt_id=receipt_id)
        self.flagged.append((kind, source))
        logger.warning("order %s: %s from %s: %s", order.external_order_id, kind, source, detail)


class StatusChanges:
    """Opens units of work on orders; tells the subscribers registered with it of what they change."""

    def __init__(
        self,
        db: Database,
        *,
        on_change: Sequence[StatusSubscriber] = (),
        on_commit: Sequence[CommitSubscriber] = (),
    ) -> None:
        self._engine = db.engine
        self._on_change = tuple(on_change)
        self._on_commit = tuple(on_commit)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[OrderUnit]:
        """A transaction whose changes are told to the commit subscribers once it has committed (never if not)."""
        async with in_transaction(self._engine) as sql:
            change = OrderUnit(sql, self._on_change)
            yield change
            await change.write()
        for status, source in change.applied:
            TRANSITIONS.labels(status, source).inc()
        for kind, source in change.flagged:
            FLAGS.labels(kind, source).inc()
        if change.changed:
            for subscriber in self._on_commit:
                subscriber(frozenset(change.changed))
