"""Reconciliation: ask Alix Pay (details call) about orders whose outcome is unknown or that went quiet.

Safe with several app instances: on PostgreSQL each order is claimed with `FOR UPDATE SKIP LOCKED`, so two
instances never poll the same order at once; SQLite has one instance by definition.
"""

import logging
from datetime import timedelta

from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.errors import AlixPayError, AlixPayOrderNotFound
from webapp.orders.live import publish_change
from webapp.orders.models import Order, utcnow
from webapp.orders.service import apply_provider_order, apply_status
from webapp.orders.state import FINAL, OrderStatus, Verdict

logger = logging.getLogger(__name__)
BATCH = 20


async def due_order_ids(session: AsyncSession, silence: timedelta) -> list[int]:
    quiet_since = utcnow() - silence
    query = (
        select(Order.id)
        .where(
            col(Order.status).not_in([status.value for status in FINAL]),
            or_(Order.status == OrderStatus.UNKNOWN.value, col(Order.updated_at) < quiet_since),
            or_(col(Order.last_polled_at).is_(None), col(Order.last_polled_at) < quiet_since),
        )
        .order_by(col(Order.updated_at))
        .limit(BATCH)
    )
    return [order_id for order_id in (await session.exec(query)).all() if order_id is not None]


async def reconcile_order(
    db_sessionmaker: async_sessionmaker[AsyncSession],
    order_id: int,
    *,
    alixpay: AlixPayClient,
    channels: ChannelsPlugin,
) -> Verdict | None:
    async with db_sessionmaker() as session, session.begin():
        claimed = (
            await session.exec(select(Order).where(Order.id == order_id).with_for_update(skip_locked=True))
        ).first()
        if claimed is None or claimed.status in FINAL:
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
            verdict = await apply_status(session, claimed, OrderStatus.REJECTED, source="poll", note=note)
        except AlixPayError as exc:
            logger.warning("order %s: poll failed (%s)", claimed.external_order_id, exc)
            return None
        else:
            note = f"poll found {provider.status}; no IPN had said so" if provider.status != previous else ""
            verdict = await apply_provider_order(session, claimed, provider, source="poll", note=note)
            if verdict is Verdict.STALE:
                logger.warning(
                    "order %s: poll says %s but we have %s (IPN and poll disagree)",
                    claimed.external_order_id,
                    provider.status,
                    previous,
                )
    if verdict is Verdict.APPLIED:
        publish_change(channels, order_id)
    return verdict


async def reconcile_once(
    db_sessionmaker: async_sessionmaker[AsyncSession],
    *,
    alixpay: AlixPayClient,
    channels: ChannelsPlugin,
    silence: timedelta,
) -> int:
    async with db_sessionmaker() as session:
        order_ids = await due_order_ids(session, silence)
    for order_id in order_ids:
        await reconcile_order(db_sessionmaker, order_id, alixpay=alixpay, channels=channels)
    return len(order_ids)
