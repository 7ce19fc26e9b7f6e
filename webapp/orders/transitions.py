"""The one owner of order status changes.

Every change of an order's status (after creation, an IPN, a reconciliation poll, later a support action) goes
through a `StatusChanges.unit()`: it decides with the pure state machine, writes the transition row, checks a
provider's order object against ours before applying it, and publishes the live update only after the commit,
so nobody ever sees a change that was rolled back. New consequences of a change belong in
`StatusChange.apply_status`, in the same transaction: a partner's webhook event and the person's email are written
there (outboxes), so each exists exactly when the change does.

It speaks SQL Core, not the ORM unit of work: this is the IPN's hot path (docs/PERFORMANCE.md). Rows are inserted
as they happen; the columns changed on a locked order are collected and written in one UPDATE before the commit.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

from litestar.channels import ChannelsPlugin
from sqlalchemy import Column, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.schemas import CRYPTO_CURRENCY, FIAT_CURRENCY, OrderObject
from webapp.embed.outbox import queue_partner_event
from webapp.metrics import FLAGS, TRANSITIONS
from webapp.notifications.outbox import queue_status_email
from webapp.orders.live import publish_change
from webapp.orders.models import Order, OrderEvent, OrderTransition, utcnow
from webapp.orders.state import Verdict, decide, from_provider
from webapp.orders.statuses import OrderStatus

logger = logging.getLogger(__name__)


class ProviderOutcome(StrEnum):
    """What became of an order object from Alix Pay (values shared with the IPN verdicts)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    UNKNOWN_STATUS = "unknown_status"
    MISMATCH = "mismatch"


def disagreements(order: Order, provider: OrderObject) -> list[str]:
    """Where a signed order object contradicts the order we created: such an object is never applied.

    The signature proves Alix Pay said it, not that it is about what we asked for (a bug on either side, or a
    replayed notification of another order with the same id in another environment).
    """
    found = []
    if provider.fiat_amount != order.fiat_amount:
        found.append(f"fiatAmount {provider.fiat_amount} is not the order's {order.fiat_amount}")
    known_type = order.provider_order.get("type")
    if known_type and provider.type != known_type:
        found.append(f"type {provider.type!r} is not the order's {known_type!r}")
    if provider.fiat_currency not in (None, FIAT_CURRENCY):
        found.append(f"fiatCurrency {provider.fiat_currency!r} is not {FIAT_CURRENCY}")
    token_currency = provider.token_transfer.currency if provider.token_transfer else None
    if token_currency not in (None, CRYPTO_CURRENCY):
        found.append(f"tokenTransfer.currency {token_currency!r} is not {CRYPTO_CURRENCY}")
    return found


def references(provider: OrderObject) -> dict[str, str]:
    """Alix Pay's references, for their indexed columns (support searches them)."""
    found = {}
    if provider.token_transfer and provider.token_transfer.tx_hash:
        found["provider_tx_hash"] = provider.token_transfer.tx_hash[:128]
    if provider.bank_transfer and provider.bank_transfer.content_payment:
        found["provider_content"] = provider.bank_transfer.content_payment[:64].upper()
    return found


ORDERS = Order.__table__
UPDATE_ORDER = update(ORDERS).where(ORDERS.c.id == bindparam("order_id_"))
"""The changed columns come as the other parameters (one compiled statement per set of columns)."""
ORDER_COLUMNS = tuple(column.name for column in ORDERS.columns)
LOCK = {
    (key.name, skip_locked): select(ORDERS).where(key == bindparam("key")).with_for_update(skip_locked=skip_locked)
    for key in (ORDERS.c.id, ORDERS.c.external_order_id)
    for skip_locked in (False, True)
}
TOUCH = {
    key.name: update(ORDERS).where(key == bindparam("key")).values(updated_at=ORDERS.c.updated_at)
    for key in (ORDERS.c.id, ORDERS.c.external_order_id)
}
"""Built once: statements of the hot path are looked up, not rebuilt per call."""
INSERT_TRANSITION = insert(OrderTransition.__table__)
INSERT_EVENT = insert(OrderEvent.__table__)


class StatusChange:
    """One unit of work on orders: what it changed is published after its commit."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.changed: set[int] = set()
        self.applied: list[tuple[str, str]] = []
        """(new status, source) of every transition, counted once committed."""
        self.flagged: list[tuple[str, str]] = []
        self._pending: dict[int, dict[str, Any]] = {}
        """Columns changed per order id, written by `write()`."""

    async def lock(self, order_id: int, *, skip_locked: bool = False) -> Order | None:
        """The order row, locked until commit so an IPN and a poll never decide on the same state.

        With `skip_locked`, an order another unit holds is not waited for: None, as if absent (PostgreSQL).
        """
        return await self._locked(ORDERS.c.id, order_id, skip_locked=skip_locked)

    async def lock_by_external_id(self, external_order_id: str) -> Order | None:
        """`lock`, found by our id as Alix Pay knows it (one statement on PostgreSQL)."""
        return await self._locked(ORDERS.c.external_order_id, external_order_id)

    async def _locked(self, key: Column[Any], value: object, *, skip_locked: bool = False) -> Order | None:
        if self.connection.dialect.name == "sqlite":
            # No row locks, and the transaction only begins at the first write: write first, so the read below
            # happens under the database's write lock and the next unit waits for this one's commit.
            await self.connection.execute(TOUCH[key.name], {"key": value})
        row = (await self.connection.execute(LOCK[key.name, skip_locked], {"key": value})).first()
        return Order(**row._mapping) if row is not None else None

    def update(self, order: Order, **values: Any) -> None:
        """Change columns of a locked order: set on the object now, written in one UPDATE before the commit."""
        for name, value in values.items():
            if name not in ORDER_COLUMNS:
                raise AttributeError(f"cashout_order has no column {name!r}")
            setattr(order, name, value)
        self._pending.setdefault(order.id or 0, {}).update(values)

    async def write(self) -> None:
        """Write the collected order columns (the unit calls this before it commits)."""
        for order_id, values in self._pending.items():
            await self.connection.execute(UPDATE_ORDER, {"order_id_": order_id, **values})
        self._pending.clear()

    async def apply_status(
        self, order: Order, target: OrderStatus, *, source: str, receipt_id: int | None = None, note: str = ""
    ) -> Verdict:
        verdict = decide(OrderStatus(order.status), target)
        if verdict is Verdict.APPLIED:
            await self.connection.execute(
                INSERT_TRANSITION,
                {
                    "order_id": order.id,
                    "from_status": order.status,
                    "to_status": target.value,
                    "source": source,
                    "receipt_id": receipt_id,
                    "note": note,
                },
            )
            await queue_partner_event(self.connection, order, order.status, target.value)
            await queue_status_email(self.connection, order, target.value)
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
    ) -> ProviderOutcome:
        """Apply a verified order object, unless it contradicts the order or its status is unknown to us."""
        found = disagreements(order, provider)
        if found:
            await self.flag(order, "mismatch", "; ".join(found), source=source, receipt_id=receipt_id)
            return ProviderOutcome.MISMATCH
        target = from_provider(provider.status)
        if target is None:
            self.update(order, provider_status=provider.status[:64])
            logger.warning("order %s: unknown Alix Pay status %r stored, not applied", order.id, provider.status[:64])
            return ProviderOutcome.UNKNOWN_STATUS
        verdict = await self.apply_status(order, target, source=source, receipt_id=receipt_id, note=note)
        if verdict is not Verdict.STALE:
            self.update(order, provider_status=provider.status[:64], provider_order=provider.to_wire())
            self.update(order, **references(provider))
            if provider.expires_at is not None:
                self.update(order, expires_at=provider.expires_at)
        return ProviderOutcome(verdict.value)

    async def record(self, order: Order, kind: str, detail: str, *, source: str, receipt_id: int | None = None) -> None:
        """Put something that happened to the order on its history (support's timeline shows every one)."""
        await self.connection.execute(
            INSERT_EVENT,
            {"order_id": order.id, "kind": kind, "source": source, "receipt_id": receipt_id, "detail": detail},
        )
        self.changed.add(order.id or 0)

    async def flag(self, order: Order, kind: str, detail: str, *, source: str, receipt_id: int | None = None) -> None:
        """Record something a person must look at, and say so at WARNING."""
        await self.record(order, kind, detail, source=source, receipt_id=receipt_id)
        self.flagged.append((kind, source))
        logger.warning("order %s: %s from %s: %s", order.external_order_id, kind, source, detail)


class StatusChanges:
    def __init__(self, db_sessionmaker: async_sessionmaker[AsyncSession], channels: ChannelsPlugin) -> None:
        self.db_sessionmaker = db_sessionmaker
        self.engine: AsyncEngine = db_sessionmaker.kw["bind"]
        self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        """For a single statement that needs no transaction of its own (no BEGIN and COMMIT round trips)."""
        self._channels = channels

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[StatusChange]:
        """A transaction whose status changes are published once it has committed (and never if it rolls back)."""
        async with self.engine.begin() as connection:
            change = StatusChange(connection)
            yield change
            await change.write()
        for status, source in change.applied:
            TRANSITIONS.labels(status, source).inc()
        for kind, source in change.flagged:
            FLAGS.labels(kind, source).inc()
        for order_id in sorted(change.changed):
            publish_change(self._channels, order_id)
