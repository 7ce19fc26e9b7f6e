"""Counts behind the activity charts, kept as status changes happen, so a chart reads hundreds of rows, not orders.

A status subscriber appends one row per change it counts (`+1` placed as an outcome, `-1`/`+1` when the outcome
changes, `+1` in a time-to-payout slot): appends never wait on one another, however many instances write at once.
The `activity-rollup` job folds the appended rows into one row per hour and kind. A chart sums what is there; the
sum is the same before and after a roll-up. Hours are UTC hours: a reader's day is 24 of them (exact for zones on
whole hours, Vietnam's included).
"""

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel

from webapp.db import in_utc, utcnow
from webapp.orders.events import StatusChanged, UnitWriter
from webapp.orders.statuses import OrderStatus, status_info

DURATION_BOUNDS = (15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400, 259200)
"""Upper bounds (seconds) of the time-to-payout slots; a last slot holds everything longer."""
DELAY_BOUNDS = (1, 2, 3, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)
"""Upper bounds (seconds) of the IPN delay slots: Alix Pay's send time is whole seconds (`ipn/service.py`)."""
PLACED, PAYOUT, IPN = "placed:", "payout:", "ipn:"
UNDATED = f"{IPN}undated"
"""An IPN that changed a status without saying when it was sent."""


class ActivityCount(SQLModel, table=True):
    __tablename__ = "activity_count"

    id: int | None = Field(default=None, primary_key=True)
    hour: datetime = Field(index=True)
    """The UTC hour counted in: when the order was placed (`placed:`), when it was paid out (`payout:`)."""
    kind: str = Field(max_length=24)
    """`placed:<outcome>` (pending, succeeded, failed), `payout:<slot>` (an index of `DURATION_BOUNDS`), `ipn:<slot>`
    (of `DELAY_BOUNDS`, in the hour the IPN changed the status) or `ipn:undated`."""
    count: int
    rolled: bool = False
    """A roll-up's sum (one per hour and kind), or an appended change still to be folded in (False)."""


def hour_of(moment: datetime) -> datetime:
    return in_utc(moment).replace(minute=0, second=0, microsecond=0)


def slot_of(duration: timedelta, bounds: tuple[int, ...] = DURATION_BOUNDS) -> int:
    seconds = duration.total_seconds()
    return next((position for position, bound in enumerate(bounds) if seconds < bound), len(bounds))


INSERT_COUNT = insert(ActivityCount.__table__)  # type: ignore[arg-type]


def changes_counted(change: StatusChanged, now: datetime) -> list[tuple[datetime, str, int]]:
    """What one status change adds to the counts: (hour, kind, ±1) rows."""
    placed = hour_of(change.order.created_at)
    before, after = status_info(change.previous).outcome, status_info(change.status).outcome
    if change.previous == OrderStatus.CREATING:  # Alix Pay answered: the order counts from now on
        rows = [(placed, f"{PLACED}{after}", 1)]
    elif before != after:
        rows = [(placed, f"{PLACED}{before}", -1), (placed, f"{PLACED}{after}", 1)]
    else:
        rows = []
    if change.pays_out:
        rows.append((hour_of(now), f"{PAYOUT}{slot_of(now - in_utc(change.order.created_at))}", 1))
    if change.source == "ipn":
        delay = change.reported_after
        rows.append((hour_of(now), UNDATED if delay is None else f"{IPN}{slot_of(delay, DELAY_BOUNDS)}", 1))
    return rows


async def count_activity(change: StatusChanged, unit: UnitWriter) -> None:
    """A status subscriber: the change's counts are appended in its own transaction (they exist exactly with it)."""
    for hour, kind, count in changes_counted(change, utcnow()):
        unit.add(INSERT_COUNT, {"hour": hour, "kind": kind, "count": count, "rolled": False})


async def roll_up(engine: AsyncEngine) -> int:
    """The `activity-rollup` job: each hour and kind with appended rows becomes one row again; returns rows taken.

    Only committed rows are taken (one still being written stays for the next round), and two rounds at once take
    each row once (the second waits on the first's deletions, then skips them): nothing counted twice or lost.
    """
    table = ActivityCount.__table__  # type: ignore[attr-defined]
    touched = select(table.c.hour, table.c.kind).where(table.c.rolled.is_(False))
    taking = delete(table).where(tuple_(table.c.hour, table.c.kind).in_(touched))
    async with engine.begin() as connection:
        taken = (await connection.execute(taking.returning(table.c.hour, table.c.kind, table.c.count))).all()
        sums: Counter[tuple[datetime, str]] = Counter()
        for hour, kind, count in taken:
            sums[(hour_of(hour), kind)] += count
        rows = [{"hour": hour, "kind": kind, "count": n, "rolled": True} for (hour, kind), n in sums.items() if n]
        if rows:
            await connection.execute(insert(table), rows)
    return len(taken)


def recount(
    orders: list[tuple[datetime, str]], payouts: list[tuple[datetime, datetime]]
) -> Counter[tuple[datetime, str]]:
    """The counts from scratch, for the migration that introduced them.

    `orders`: (placed at, status) of every order; `payouts`: (placed at, paid out at) of every paid-out order.
    """
    sums: Counter[tuple[datetime, str]] = Counter()
    for placed, status in orders:
        if status != OrderStatus.CREATING:
            sums[(hour_of(placed), f"{PLACED}{status_info(status).outcome}")] += 1
    for placed, paid in payouts:
        sums[(hour_of(paid), f"{PAYOUT}{slot_of(in_utc(paid) - in_utc(placed))}")] += 1
    return sums
