"""Reconciliation: ask Alix Pay (details call) about orders whose outcome is unknown or that went quiet.

Safe with several app instances: on PostgreSQL each order is claimed with `FOR UPDATE SKIP LOCKED`, so two
instances never poll the same order at once; SQLite has one instance by definition.
"""

import logging
from datetime import timedelta

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.errors import AlixPayError, AlixPayOrderNotFound
from webapp.orders.models import Order, utcnow
from webapp.orders.statuses import FINAL_STATUSES, OrderStatus, is_final
from webapp.orders.transitions import ProviderOutcome, StatusChanges

logger = logging.getLogger(__name__)
BATCH = 20


async def due_order_ids(session: AsyncSession, silence: timedelta) -> list[int]:
    quiet_since = utcnow() - silence
    query = (
        select(Order.id)
        .where(
            col(Order.status).not_in([status.value for status in FINAL_STATUSES]),
            or_(Order.status == OrderStatus.UNKNOWN.value, col(Order.updated_at) < quiet_since),
            or_(col(Order.last_polled_at).is_(None), col(Order.last_polled_at) < quiet_since),
        )
        .order_by(col(Order.updated_at))
        .limit(BATCH)
    )
    return [order_id for order_id in (await session.exec(query)).all() if order_id is not None]


async def reconcile_order(order_id: int, *, changes: StatusChanges, alixpay: AlixPayClient) -> ProviderOutcome | None:
    """Poll one order and apply what Alix Pay says, through the one owner of status changes; None if not polled."""
    async with changes.unit() as change:
        claimed = (
            await change.session.exec(select(Order).where(Order.id == order_id).with_for_update(skip_locked=True))
        ).first()
        if claimed is None or is_final(claimed.status):
            return None
        claimed.last_polled_at = utcnow()
        previous = claimed.status
        try:
            provider = await alixpay.get_order(claimed.external_order_id)
        except AlixPayOrderNotFound:
            if claimed.status not in (OrderStatus.UNKNOWN, OrderStatus.CREATING):
                logger.error("order %s: Alix Pay no longer knows it", claimed.external_order_id)
                return None
            note = "Alix Pay has no such order: the create never took effect"
            verdict = await change.apply_status(claimed, OrderStatus.REJECTED, source="poll", note=note)
            return ProviderOutcome(verdict.value)
        except AlixPayError as exc:
            logger.warning("order %s: poll failed (%s)", claimed.external_order_id, exc)
            return None
        note = f"poll found {provider.status}; no IPN had said so" if provider.status != previous else ""
        outcome = await change.apply_provider_order(claimed, provider, source="poll", note=note)
        if outcome is ProviderOutcome.STALE:
            logger.warning(
                "order %s: poll says %s but we have %s (IPN and poll disagree)",
                claimed.external_order_id,
                provider.status,
                previous,
            )
        return outcome


async def reconcile_once(*, changes: StatusChanges, alixpay: AlixPayClient, silence: timedelta) -> int:
    async with changes.db_sessionmaker() as session:
        order_ids = await due_order_ids(session, silence)
    for order_id in order_ids:
        try:
            await reconcile_order(order_id, changes=changes, alixpay=alixpay)
        except Exception:  # one order that cannot be polled must not keep the others from it
            logger.exception("order id %s: reconciliation failed", order_id)
    return len(order_ids)
