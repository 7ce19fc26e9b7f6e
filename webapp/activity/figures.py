"""The figures behind the activity charts, summed by hour or day of the reader's zone inside the database.

Orders are not read: the counts kept as statuses change (`counts.py`) are, a few rows per hour, so a month costs
the same whatever the number of orders (tests/perf/bench_activity.py, docs/PERFORMANCE.md).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from webapp.activity.counts import DELAY_BOUNDS, DURATION_BOUNDS, IPN, PAYOUT, PLACED, UNDATED, ActivityCount
from webapp.db import epoch_bucket
from webapp.embed.models import WebhookAttempt
from webapp.orders.statuses import Outcome

HOUR, DAY = 3600, 86400


@dataclass(frozen=True)
class Window:
    """`count` buckets of `width` seconds, the last holding `now`, cut at the reader's midnight and full hours."""

    width: int
    count: int
    zone: ZoneInfo
    now: datetime

    @property
    def offset(self) -> int:
        """The zone's UTC offset now, in seconds (Vietnam keeps one all year; elsewhere a DST change shifts a day)."""
        return int((self.now.astimezone(self.zone).utcoffset() or timedelta()).total_seconds())

    @property
    def first(self) -> int:
        return int((self.now.timestamp() + self.offset) // self.width) - self.count + 1

    def start(self, index: int) -> datetime:
        """When the `index`-th bucket (from 0) begins, in the reader's zone."""
        return datetime.fromtimestamp((self.first + index) * self.width - self.offset, UTC).astimezone(self.zone)

    @property
    def since(self) -> datetime:
        return self.start(0).astimezone(UTC)

    def bucket(self, column: object) -> epoch_bucket:
        return epoch_bucket(column, self.width, self.offset)

    def place(self, bucket: int) -> int | None:
        index = bucket - self.first
        return index if 0 <= index < self.count else None


@dataclass
class Volume:
    """Cash-outs placed in each bucket, by outcome (as each order stands now)."""

    by_outcome: dict[Outcome, list[int]]

    def total(self, index: int) -> int:
        return sum(counts[index] for counts in self.by_outcome.values())

    def success_rate(self, index: int) -> float | None:
        """Of the cash-outs of this bucket that finished, the share paid out; None while none finished."""
        paid, failed = self.by_outcome[Outcome.SUCCEEDED][index], self.by_outcome[Outcome.FAILED][index]
        return paid / (paid + failed) if paid + failed else None


def counts_query(window: Window) -> Select:
    """The kept counts (`counts.py`) of the window, summed by bucket and kind: hundreds of rows, whatever the orders."""
    bucket = window.bucket(ActivityCount.hour)
    return (
        select(bucket, ActivityCount.kind, func.sum(ActivityCount.count))
        .where(col(ActivityCount.hour) >= window.since)
        .group_by(bucket, ActivityCount.kind)
    )


@dataclass
class Histogram:
    """How many durations fell under each of `bounds` (and beyond the last), per bucket."""

    bounds: tuple[int, ...]
    counts: list[list[int]]

    @classmethod
    def empty(cls, bounds: tuple[int, ...], buckets: int) -> "Histogram":
        return cls(bounds, [[0] * (len(bounds) + 1) for _ in range(buckets)])

    def quantile(self, index: int, q: float) -> float | None:
        return quantile(self.counts[index], q, self.bounds)

    def overall(self, q: float) -> float | None:
        return quantile([sum(column) for column in zip(*self.counts, strict=True)], q, self.bounds)


def quantile(counts: list[int], q: float, bounds: tuple[int, ...] = DURATION_BOUNDS) -> float | None:
    """The `q` quantile (seconds) of a histogram, interpolated inside its bucket as Prometheus' `histogram_quantile`.

    Beyond the last bound the last bound is the answer (nothing says how much longer). None for no data.
    """
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for position, count in enumerate(counts):
        if count and seen + count >= rank:
            if position == len(bounds):
                return float(bounds[-1])
            lower = bounds[position - 1] if position else 0
            return lower + (bounds[position] - lower) * (rank - seen) / count
        seen += count
    return float(bounds[-1])


@dataclass
class Counted:
    """The kept counts of one window: cash-outs by outcome, times to payout, IPN delays (and IPNs without a time)."""

    volume: Volume
    payouts: Histogram
    delays: Histogram
    undated: int


async def counted(session: AsyncSession, window: Window) -> Counted:
    """The window's kept counts, each in its bucket.

    Cash-outs by the bucket they were placed in (by outcome as each stands now), times to payout by the one they
    were paid out in, IPN delays by the one the IPN changed a status in.
    """
    volume = {outcome: [0] * window.count for outcome in Outcome}
    payouts, delays = Histogram.empty(DURATION_BOUNDS, window.count), Histogram.empty(DELAY_BOUNDS, window.count)
    undated = 0
    for number, kind, count in (await session.exec(counts_query(window))).all():
        index = window.place(number)
        if index is None:
            continue
        if kind.startswith(PLACED):
            volume[Outcome(kind.removeprefix(PLACED))][index] += int(count)
        elif kind.startswith(PAYOUT):
            payouts.counts[index][int(kind.removeprefix(PAYOUT))] += int(count)
        elif kind == UNDATED:
            undated += int(count)
        elif kind.startswith(IPN):
            delays.counts[index][int(kind.removeprefix(IPN))] += int(count)
    return Counted(Volume(volume), payouts, delays, undated)


def webhook_query(window: Window) -> Select:
    """Delivery attempts to partners that did not get a 2xx (no answer, or an error status), per bucket."""
    bucket = window.bucket(WebhookAttempt.at)
    failed = or_(
        col(WebhookAttempt.status_code).is_(None),
        col(WebhookAttempt.status_code) < 200,
        col(WebhookAttempt.status_code) >= 300,
    )
    return select(bucket, func.count()).where(col(WebhookAttempt.at) >= window.since, failed).group_by(bucket)


async def failed_webhooks(session: AsyncSession, window: Window) -> list[int]:
    counts = [0] * window.count
    for number, count in (await session.exec(webhook_query(window))).all():
        index = window.place(number)
        if index is not None:
            counts[index] += count
    return counts


@dataclass
class Activity:
    """Everything the charts draw: the last 24 hours by hour, the last 30 days by day."""

    hours: Window
    days: Window
    hourly: Volume
    daily: Volume
    payouts: Histogram
    ipn_delays: Histogram
    undated_ipns: int
    """IPNs that changed a status in the 30 days without saying when Alix Pay sent them (no delay to count)."""
    webhooks: list[int]


def windows(zone: ZoneInfo, now: datetime | None = None) -> tuple[Window, Window]:
    """The last 24 hours by hour, the last 30 days by day."""
    now = now or datetime.now(UTC)
    return Window(HOUR, 24, zone, now), Window(DAY, 30, zone, now)


def statements(zone: ZoneInfo) -> dict[str, Select]:
    """Every query of one redraw, by name (for plans: tests/perf/bench_activity.py)."""
    hours, days = windows(zone)
    return {
        "counts by hour": counts_query(hours),
        "counts by day": counts_query(days),
        "failed webhooks": webhook_query(days),
    }


async def activity(session: AsyncSession, *, zone: ZoneInfo, now: datetime | None = None) -> Activity:
    hours, days = windows(zone, now)
    hourly, daily = await counted(session, hours), await counted(session, days)
    webhooks = await failed_webhooks(session, days)
    return Activity(hours, days, hourly.volume, daily.volume, daily.payouts, daily.delays, daily.undated, webhooks)
