"""The overview's chart as plain numbers: where each bar and dot goes in the SVG, nothing else.

The template draws it (so every text is escaped by Jinja); this module only does the arithmetic. Bars
stack each day's deliveries by status; the dots are that day's success rate on a 0-100 % scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from flask_discord_roles.deliveries import DayCount

WIDTH = 720
HEIGHT = 260
LEFT = 44  # room for the count axis's labels
RIGHT = 44  # room for the success rate's axis
TOP = 12
BOTTOM = 34  # room for the day labels
STACK_ORDER = ("completed", "failed", "pending", "expired")  # bottom to top
BAR_SHARE = 0.7  # of each day's slot; the rest is the gap between bars


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    day: date
    label: str
    x: float
    width: float
    total: int
    segments: list[Segment]
    summary: str  # what a screen reader or a hover says about the day


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class RatePoint:
    x: float
    y: float
    rate: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int  # x of the plot's right edge
    top: int
    bottom: int  # y of the plot's baseline
    bars: list[Bar]
    count_ticks: list[Tick]
    rate_ticks: list[Tick]
    rate_points: list[RatePoint]
    completed: int
    settled: int  # completed or failed: what a success rate is a share of
    description: str

    @property
    def success_rate(self) -> float | None:
        return round(100 * self.completed / self.settled, 1) if self.settled else None

    @property
    def rate_polyline(self) -> str:
        return " ".join(f"{point.x:.1f},{point.y:.1f}" for point in self.rate_points)


def daily_chart(days: Sequence[DayCount]) -> Chart:
    """Lay out one bar per day, oldest on the left."""
    plot_right = WIDTH - RIGHT
    baseline = HEIGHT - BOTTOM
    plot_height = baseline - TOP
    top_value = _nice_ceiling(max((day.total for day in days), default=0))
    slot = (plot_right - LEFT) / max(len(days), 1)
    bars: list[Bar] = []
    points: list[RatePoint] = []
    for index, day in enumerate(days):
        x = LEFT + index * slot + slot * (1 - BAR_SHARE) / 2
        segments: list[Segment] = []
        y = float(baseline)
        for status in STACK_ORDER:
            count: int = getattr(day, status)
            if count:
                height = plot_height * count / top_value
                y -= height
                segments.append(Segment(status, count, y, height))
        bars.append(
            Bar(
                day.day,
                f"{day.day.day} {day.day:%b}",
                x,
                slot * BAR_SHARE,
                day.total,
                segments,
                _summary(day),
            )
        )
        settled = day.completed + day.failed
        if settled:
            rate = 100 * day.completed / settled
            points.append(RatePoint(x + slot * BAR_SHARE / 2, baseline - plot_height * rate / 100, rate))
    completed = sum(day.completed for day in days)
    settled = completed + sum(day.failed for day in days)
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=plot_right,
        top=TOP,
        bottom=baseline,
        bars=bars,
        count_ticks=[
            Tick(baseline - plot_height * share, str(round(top_value * share))) for share in (0, 0.5, 1)
        ],
        rate_ticks=[Tick(baseline - plot_height * share, f"{round(100 * share)} %") for share in (0, 0.5, 1)],
        rate_points=points,
        completed=completed,
        settled=settled,
        description=_describe(days, completed, settled),
    )


def _nice_ceiling(value: int) -> int:
    """The smallest of 2, 4, 10, 20, 40, 100, … at or above ``value``: its half is a round tick too."""
    scale = 1
    while True:
        for step in (2, 4, 10):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _summary(day: DayCount) -> str:
    counts = ", ".join(f"{getattr(day, status)} {status}" for status in STACK_ORDER if getattr(day, status))
    return f"{day.day:%A %d %B}: {counts or 'no deliveries'}"


def _describe(days: Sequence[DayCount], completed: int, settled: int) -> str:
    total = sum(day.total for day in days)
    if not total:
        return f"No deliveries in the last {len(days)} days."
    busiest = max(days, key=lambda day: day.total)
    rate = f"{round(100 * completed / settled, 1)} % of settled deliveries completed" if settled else ""
    return (
        f"{total} deliveries in the last {len(days)} days, most on {busiest.day:%d %B} ({busiest.total}). "
        f"{rate}".strip()
    )
