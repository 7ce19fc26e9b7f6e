"""Activity as charts: SVG geometry drawn on the server, facts for a sentence of summary, the table behind each.

No chart library and no script: `templates/activity/_chart.html` writes the `<svg>` from these numbers, so the
page keeps its Content-Security-Policy and reads the same in every language.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Literal

from webapp.activity.figures import Activity, Histogram, Volume, Window
from webapp.i18n import N_
from webapp.orders.statuses import Outcome

WIDTH, HEIGHT = 600, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 28
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
X_LABELS = 6
"""At most this many time labels under a chart: enough to read it, few enough for a phone."""
DURATION_STEPS = (2, 4, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200)
"""Tops of a duration axis: each half a whole number of seconds (its middle label reads true)."""
OUTCOME_SERIES = (
    (Outcome.SUCCEEDED, N_("Paid out"), "paid"),
    (Outcome.FAILED, N_("Failed"), "failed"),
    (Outcome.PENDING, N_("In progress"), "pending"),
)

Unit = Literal["count", "percent", "duration"]


@dataclass(frozen=True)
class Series:
    name: str
    """A message id: the template translates it."""
    css: str
    values: list[float | None]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str


@dataclass(frozen=True)
class Line:
    css: str
    points: list[tuple[float, float]]

    @property
    def path(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)


@dataclass
class Chart:
    key: str
    title: str
    kind: Literal["bars", "lines"]
    unit: Unit
    window: Window
    series: list[Series]
    facts: dict[str, object] = field(default_factory=dict)
    """What the summary sentence says (totals, rates, the busiest time), as numbers: the template words them."""

    @property
    def starts(self) -> list[datetime]:
        return [self.window.start(index) for index in range(self.window.count)]

    @property
    def period(self) -> Literal["hour", "day"]:
        return "hour" if self.window.width < 86400 else "day"

    @cached_property
    def top(self) -> float:
        """The value at the top of the plot: a round number above every value (stacked bars: their sums)."""
        if self.unit == "percent":
            return 1.0
        if self.kind == "bars":
            highest = max((self._stacked(index) for index in range(self.window.count)), default=0.0)
        else:
            highest = max((value for s in self.series for value in s.values if value is not None), default=0.0)
        if self.unit == "duration":
            return float(next((step for step in DURATION_STEPS if step >= highest), DURATION_STEPS[-1]))
        return _round_up(highest)

    def _stacked(self, index: int) -> float:
        return sum(s.values[index] or 0 for s in self.series)

    def _y(self, value: float) -> float:
        return TOP + PLOT_HEIGHT * (1 - min(value, self.top) / self.top)

    @property
    def slot(self) -> float:
        return PLOT_WIDTH / self.window.count

    def bars(self) -> list[Bar]:
        drawn = []
        for index in range(self.window.count):
            base = 0.0
            for s in self.series:
                value = s.values[index] or 0
                if value:
                    x = LEFT + index * self.slot + self.slot * 0.1
                    drawn.append(
                        Bar(x, self._y(base + value), self.slot * 0.8, self._y(base) - self._y(base + value), s.css)
                    )
                base += value
        return drawn

    def lines(self) -> list[Line]:
        return [
            Line(
                s.css,
                [
                    (LEFT + (index + 0.5) * self.slot, self._y(value))
                    for index, value in enumerate(s.values)
                    if value is not None
                ],
            )
            for s in self.series
        ]

    def y_ticks(self) -> list[tuple[float, float]]:
        """(y, value) at the bottom, the middle and the top of the plot."""
        return [(self._y(value), value) for value in (0.0, self.top / 2, self.top)]

    def x_ticks(self) -> list[tuple[float, datetime]]:
        every = math.ceil(self.window.count / X_LABELS)
        last = self.window.count - 1
        chosen = range(last % every, self.window.count, every)  # the newest bucket is always labelled
        return [(LEFT + (index + 0.5) * self.slot, self.window.start(index)) for index in chosen]

    def rows(self) -> list[tuple[datetime, list[float | None]]]:
        return [
            (self.window.start(index), [s.values[index] for s in self.series]) for index in range(self.window.count)
        ]


def _round_up(value: float) -> float:
    """1, 2, 5, 10, 20, 50, …: the first at or above `value` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 5, 10) if step * power >= value))


def _outcomes(volume: Volume) -> list[Series]:
    return [Series(name, css, list(volume.by_outcome[outcome])) for outcome, name, css in OUTCOME_SERIES]


def _volume_facts(volume: Volume, window: Window) -> dict[str, object]:
    totals = [volume.total(index) for index in range(window.count)]
    busiest = max(range(window.count), key=lambda index: (totals[index], index))
    facts: dict[str, object] = {css: sum(volume.by_outcome[outcome]) for outcome, _name, css in OUTCOME_SERIES}
    return facts | {"total": sum(totals), "busiest_at": window.start(busiest), "busiest": totals[busiest]}


def _percentiles(
    key: str, title: str, window: Window, histogram: Histogram, names: tuple[str, str], **facts: object
) -> Chart:
    """Median and 95th percentile per bucket, as lines, with the window's own."""
    each = range(window.count)
    series = [
        Series(name, f"p{round(q * 100)}", [histogram.quantile(i, q) for i in each])
        for name, q in zip(names, (0.5, 0.95), strict=True)
    ]
    return Chart(
        key,
        title,
        "lines",
        "duration",
        window,
        series,
        {"p50": histogram.overall(0.5), "p95": histogram.overall(0.95), **facts},
    )


def charts(activity: Activity) -> list[Chart]:
    days, daily, payouts, delays = activity.days, activity.daily, activity.payouts, activity.ipn_delays
    each_day = range(days.count)
    paid, failed = sum(daily.by_outcome[Outcome.SUCCEEDED]), sum(daily.by_outcome[Outcome.FAILED])
    return [
        Chart(
            "volume-hours",
            N_("Cash-outs per hour, last 24 hours"),
            "bars",
            "count",
            activity.hours,
            _outcomes(activity.hourly),
            _volume_facts(activity.hourly, activity.hours),
        ),
        Chart(
            "volume-days",
            N_("Cash-outs per day, last 30 days"),
            "bars",
            "count",
            days,
            _outcomes(daily),
            _volume_facts(daily, days),
        ),
        Chart(
            "success-days",
            N_("Success rate per day, last 30 days"),
            "lines",
            "percent",
            days,
            [Series(N_("Paid out, of those finished"), "rate", [daily.success_rate(i) for i in each_day])],
            {"rate": paid / (paid + failed) if paid + failed else None, "today": daily.success_rate(days.count - 1)},
        ),
        _percentiles(
            "payout-days",
            N_("Time from placed to paid out, per day"),
            days,
            payouts,
            (N_("Half were paid within (median)"), N_("95 in 100 were paid within")),
        ),
        _percentiles(
            "ipn-days",
            N_("Time from Alix Pay's notification to us, per day"),
            days,
            delays,
            (N_("Half arrived within (median)"), N_("95 in 100 arrived within")),
            undated=activity.undated_ipns,
        ),
        Chart(
            "webhooks-days",
            N_("Failed webhook deliveries to partners, per day"),
            "bars",
            "count",
            days,
            [Series(N_("Failed deliveries"), "failed", list(activity.webhooks))],
            {"total": sum(activity.webhooks), "today": activity.webhooks[-1]},
        ),
    ]
