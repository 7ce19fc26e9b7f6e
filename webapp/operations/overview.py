"""The numbers behind the operations page and the IPN silence alarm, read from the database."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.db import utcnow
from webapp.ipn.models import IpnReceipt
from webapp.orders.models import Order, OrderEvent, stuck
from webapp.orders.state import Verdict
from webapp.orders.statuses import OrderStatus
from webapp.support.search import DISAGREEMENT_KINDS

VERIFIED = tuple(Verdict)
"""Verdicts of receipts whose signature was verified: proof that Alix Pay's notifications reach us."""
AWAITING_IPNS = (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_COMPLETED, OrderStatus.PROCESSING_TOKEN_TRANSFER)
"""Statuses of orders Alix Pay has and is still to notify us about."""


async def last_verified_ipn_at(session: AsyncSession) -> datetime | None:
    query = select(func.max(IpnReceipt.received_at)).where(col(IpnReceipt.verdict).in_(VERIFIED))
    return (await session.exec(query)).one()


async def oldest_waiting_order_at(session: AsyncSession) -> datetime | None:
    query = select(func.min(Order.created_at)).where(col(Order.status).in_([s.value for s in AWAITING_IPNS]))
    return (await session.exec(query)).one()


@dataclass(frozen=True)
class Silence:
    last_ipn_at: datetime | None
    waiting_since: datetime | None
    silent: bool


async def ipn_silence(session: AsyncSession, *, after: timedelta) -> Silence:
    """Silent: orders have waited longer than `after` for notifications, and none verified came in that long."""
    last, waiting = await last_verified_ipn_at(session), await oldest_waiting_order_at(session)
    threshold = utcnow() - after
    silent = waiting is not None and waiting < threshold and (last is None or last < threshold)
    return Silence(last, waiting, silent)


@dataclass(frozen=True)
class Overview:
    silence: Silence
    waiting_orders: int
    receipts_last_hour: dict[str, int]
    stuck_orders: int
    disagreements_last_day: int


async def overview(session: AsyncSession, *, silence_after: timedelta, stuck_after: timedelta) -> Overview:
    now = utcnow()
    waiting = select(func.count()).where(col(Order.status).in_([s.value for s in AWAITING_IPNS]))
    verdicts = (
        select(IpnReceipt.verdict, func.count())
        .where(col(IpnReceipt.received_at) >= now - timedelta(hours=1))
        .group_by(IpnReceipt.verdict)
    )
    quiet = select(func.count()).where(stuck(stuck_after, now))
    disagreements = select(func.count()).where(
        col(OrderEvent.kind).in_(DISAGREEMENT_KINDS), col(OrderEvent.at) >= now - timedelta(days=1)
    )
    return Overview(
        silence=await ipn_silence(session, after=silence_after),
        waiting_orders=(await session.exec(waiting.select_from(Order))).one(),
        receipts_last_hour={verdict or "pending": count for verdict, count in (await session.exec(verdicts)).all()},
        stuck_orders=(await session.exec(quiet.select_from(Order))).one(),
        disagreements_last_day=(await session.exec(disagreements.select_from(OrderEvent))).one(),
    )
