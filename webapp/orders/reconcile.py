"""Reconciliation: ask Alix Pay (details call) about orders whose outcome is unknown or that went quiet.

Safe with several app instances: each order is claimed in a unit of its own (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, then its `last_polled_at` committed), so two instances never poll the same order in one round.

Nothing is held while Alix Pay answers (up to the client's timeout): the answer is applied in another unit, to the
order as it is then. A poll that held the order's row (on SQLite the database's write lock) across the call made
every IPN judged with that order wait as long, and on SQLite every write (docs/RELIABILITY.md).
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.errors import AlixPayError, AlixPayOrderNotFound
from webapp.alixpay.schemas import OrderObject
from webapp.db import Database, utcnow
from webapp.jobs import each_on_its_own
from webapp.logs import about_order
from webapp.metrics import POLLS
from webapp.orders import phrases
from webapp.orders.models import Order
from webapp.orders.state import Verdict
from webapp.orders.statuses import FINAL_STATUSES, OrderStatus, is_final
from webapp.orders.transitions import OrderUnit, StatusChanges

logger = logging.getLogger(__name__)
BATCH = 20
for _outcome in ("answered", "not_found", "failed"):  # exported from the start, at 0
    POLLS.labels(_outcome)


async def due_orders(session: AsyncSession, quiet_since: datetime) -> list[tuple[int, str]]:
    """(id, externalOrderId) of the orders to poll now, the longest quiet first."""
    query = (
        select(Order.id, Order.external_order_id)
        .where(
            col(Order.status).not_in([status.value for status in FINAL_STATUSES]),
            or_(Order.status == OrderStatus.UNKNOWN.value, col(Order.updated_at) < quiet_since),
            or_(col(Order.last_polled_at).is_(None), col(Order.last_polled_at) < quiet_since),
        )
        .order_by(col(Order.updated_at))
        .limit(BATCH)
    )
    return [(order_id, external_id) for order_id, external_id in (await session.exec(query)).all() if order_id]


async def reconcile_order(
    order_id: int,
    *,
    changes: StatusChanges,
    alixpay: AlixPayClient,
    source: str = "poll",
    include_final: bool = False,
    polled_before: datetime | None = None,
) -> Verdict | None:
    """Poll one order and apply what Alix Pay says, through the one owner of status changes; None if not polled.

    Support's "Check status now" polls with `source="manual"`, also a final order (nothing is applied to it).
    With `polled_before`, an order another instance polled since then is left alone: the claim is taken only after
    the list of due orders was read.
    """
    claimed = await _claim(order_id, changes, include_final=include_final, polled_before=polled_before)
    if claimed is None:
        return None
    try:
        provider = await alixpay.get_order(claimed.external_order_id)
    except AlixPayOrderNotFound:
        POLLS.labels("not_found").inc()
        async with _locked(changes, order_id) as (change, order):
            return await _unknown_at_alix_pay(change, order, source)
    except AlixPayError as exc:
        POLLS.labels("failed").inc()
        async with _locked(changes, order_id) as (change, order):
            change.record(order, "poll", phrases.POLL_FAILED(error=type(exc).__name__), source=source)
        logger.warning("order %s: poll failed (%s)", claimed.external_order_id, exc)
        return None
    POLLS.labels("answered").inc()
    async with _locked(changes, order_id) as (change, order):
        return await _apply_answer(change, order, provider, source=source, moved=order.status != claimed.status)


async def _claim(
    order_id: int, changes: StatusChanges, *, include_final: bool, polled_before: datetime | None
) -> Order | None:
    """The order as it is when its poll starts, its `last_polled_at` committed; None if it is not to be polled."""
    async with changes.unit() as change:
        order = await change.lock(order_id, skip_locked=True)
        if order is None or (is_final(order.status) and not include_final):
            return None
        if polled_before and order.last_polled_at and order.last_polled_at >= polled_before:
            return None
        change.update(order, last_polled_at=utcnow())
        return order


@asynccontextmanager
async def _locked(changes: StatusChanges, order_id: int) -> AsyncIterator[tuple[OrderUnit, Order]]:
    """A unit holding the order (once Alix Pay has answered: briefly)."""
    async with changes.unit() as change:
        order = await change.lock(order_id)
        if order is None:
            raise LookupError(f"no order {order_id}")  # orders are never deleted
        yield change, order


async def _apply_answer(change: OrderUnit, order: Order, provider: OrderObject, *, source: str, moved: bool) -> Verdict:
    """Alix Pay's answer applied and put on the order's history; what contradicts ours is flagged for a person.

    `moved`: the order's status changed while Alix Pay answered (an IPN came meanwhile). The answer may then be
    older than that IPN, so an answer behind ours is no disagreement.
    """
    previous = order.status
    change.record(order, "poll", phrases.POLL_SAYS(status=provider.status[:64]), source=source)
    note = phrases.POLL_FOUND(status=provider.status) if provider.status != previous else ""
    outcome = await change.apply_provider_order(order, provider, source=source, note=note)
    if outcome is Verdict.APPLIED and note:
        change.flag(order, "disagreement", note, source=source)
    elif outcome is Verdict.STALE and not moved:
        behind = phrases.POLL_BEHIND(status=provider.status[:64], ours=previous)
        change.flag(order, "disagreement", behind, source=source)
    return outcome


async def _unknown_at_alix_pay(change: OrderUnit, order: Order, source: str) -> Verdict | None:
    """Alix Pay has no such order: a create that never took effect is rejected; any other order is flagged."""
    change.record(order, "poll", phrases.NOT_KNOWN(), source=source)
    if order.status not in (OrderStatus.UNKNOWN, OrderStatus.CREATING):
        change.flag(order, "disagreement", phrases.NO_SUCH_ORDER(ours=order.status), source=source)
        return None
    note = phrases.NEVER_TOOK_EFFECT()
    return await change.apply_status(order, OrderStatus.REJECTED, source=source, note=note)


async def reconcile_once(*, db: Database, changes: StatusChanges, alixpay: AlixPayClient, silence: timedelta) -> int:
    quiet_since = utcnow() - silence
    async with db.sessionmaker() as session:
        due = await due_orders(session, quiet_since)

    async def poll(due_order: tuple[int, str]) -> None:
        order_id, external_id = due_order
        with about_order(external_id):
            await reconcile_order(order_id, changes=changes, alixpay=alixpay, polled_before=quiet_since)

    await each_on_its_own("reconcile", due, poll)
    return len(due)
