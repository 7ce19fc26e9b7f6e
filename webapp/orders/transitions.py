"""The one owner of order status changes.

Every change of an order's status (after creation, an IPN, a reconciliation poll, later a support action) goes
through a `StatusChanges.unit()`: it decides with the pure state machine, writes the transition row, checks a
provider's order object against ours before applying it, and publishes the live update only after the commit,
so nobody ever sees a change that was rolled back. New consequences of a change belong in
`StatusChange.apply_status`, in the same transaction: a partner's webhook event and the person's email are written
there (outboxes), so each exists exactly when the change does.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum

from litestar.channels import ChannelsPlugin
from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
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


def remember_references(order: Order, provider: OrderObject) -> None:
    """Copy Alix Pay's references into their indexed columns (support searches them)."""
    if provider.token_transfer and provider.token_transfer.tx_hash:
        order.provider_tx_hash = provider.token_transfer.tx_hash[:128]
    if provider.bank_transfer and provider.bank_transfer.content_payment:
        order.provider_content = provider.bank_transfer.content_payment[:64].upper()


class StatusChange:
    """One unit of work on orders: what it changed is published after its commit."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.changed: set[int] = set()
        self.applied: list[tuple[str, str]] = []
        """(new status, source) of every transition, counted once committed."""
        self.flagged: list[tuple[str, str]] = []

    async def lock(self, order_id: int, *, skip_locked: bool = False) -> Order | None:
        """The order row, locked until commit so an IPN and a poll never decide on the same state.

        With `skip_locked`, an order another unit holds is not waited for: None, as if absent (PostgreSQL).
        """
        return await self._locked(Order.id == order_id, skip_locked=skip_locked)

    async def lock_by_external_id(self, external_order_id: str) -> Order | None:
        """`lock`, found by our id as Alix Pay knows it (one statement on PostgreSQL)."""
        return await self._locked(Order.external_order_id == external_order_id)

    async def _locked(self, condition: ColumnElement[bool], *, skip_locked: bool = False) -> Order | None:
        if self.session.bind is not None and self.session.bind.dialect.name == "sqlite":
            # No row locks, and the transaction only begins at the first write: write first, so the read below
            # happens under the database's write lock and the next unit waits for this one's commit.
            await self.session.exec(  # type: ignore[call-overload]
                update(Order)
                .where(condition)
                .values(updated_at=Order.updated_at)
                .execution_options(synchronize_session=False)
            )
        query = select(Order).where(condition).with_for_update(skip_locked=skip_locked)
        return (await self.session.exec(query)).first()

    async def apply_status(
        self, order: Order, target: OrderStatus, *, source: str, receipt_id: int | None = None, note: str = ""
    ) -> Verdict:
        verdict = decide(OrderStatus(order.status), target)
        if verdict is Verdict.APPLIED:
            self.session.add(
                OrderTransition(
                    order_id=order.id or 0,
                    from_status=order.status,
                    to_status=target.value,
                    source=source,
                    receipt_id=receipt_id,
                    note=note,
                )
            )
            await queue_partner_event(self.session, order, order.status, target.value)
            queue_status_email(self.session, order, target.value)
            order.status = target.value
            order.updated_at = utcnow()
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
            self.flag(order, "mismatch", "; ".join(found), source=source, receipt_id=receipt_id)
            return ProviderOutcome.MISMATCH
        target = from_provider(provider.status)
        if target is None:
            order.provider_status = provider.status[:64]
            logger.warning("order %s: unknown Alix Pay status %r stored, not applied", order.id, provider.status[:64])
            return ProviderOutcome.UNKNOWN_STATUS
        verdict = await self.apply_status(order, target, source=source, receipt_id=receipt_id, note=note)
        if verdict is not Verdict.STALE:
            order.provider_status = provider.status[:64]
            order.provider_order = provider.to_wire()
            remember_references(order, provider)
            if provider.expires_at is not None:
                order.expires_at = provider.expires_at
        return ProviderOutcome(verdict.value)

    def record(self, order: Order, kind: str, detail: str, *, source: str, receipt_id: int | None = None) -> None:
        """Put something that happened to the order on its history (support's timeline shows every one)."""
        self.session.add(
            OrderEvent(order_id=order.id or 0, kind=kind, source=source, receipt_id=receipt_id, detail=detail)
        )
        self.changed.add(order.id or 0)

    def flag(self, order: Order, kind: str, detail: str, *, source: str, receipt_id: int | None = None) -> None:
        """Record something a person must look at, and say so at WARNING."""
        self.record(order, kind, detail, source=source, receipt_id=receipt_id)
        self.flagged.append((kind, source))
        logger.warning("order %s: %s from %s: %s", order.external_order_id, kind, source, detail)


class StatusChanges:
    def __init__(self, db_sessionmaker: async_sessionmaker[AsyncSession], channels: ChannelsPlugin) -> None:
        self.db_sessionmaker = db_sessionmaker
        self._channels = channels

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[StatusChange]:
        """A transaction whose status changes are published once it has committed (and never if it rolls back)."""
        async with self.db_sessionmaker() as session:
            change = StatusChange(session)
            async with session.begin():
                yield change
        for status, source in change.applied:
            TRANSITIONS.labels(status, source).inc()
        for kind, source in change.flagged:
            FLAGS.labels(kind, source).inc()
        for order_id in sorted(change.changed):
            publish_change(self._channels, order_id)
