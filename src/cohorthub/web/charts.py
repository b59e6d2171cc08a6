"""Geometry of the small inline SVG charts; `templates/charts.html` draws them (no script)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

W, H, PAD = 560, 140, 24


@dataclass(frozen=True, slots=True)
class Bar:
    """One day: entered above the axis, left below it."""

    day: float
    entered: int
    left: int
    x: float
    width: float
    up: float
    down: float


@dataclass(frozen=True, slots=True)
class FlowChart:
    """Entered/left bars per day."""

    bars: list[Bar]
    peak: int
    mid: float
    width: int = W
    height: int = H
    pad: int = PAD


@dataclass(frozen=True, slots=True)
class LineChart:
    """A size over time."""

    points: str
    top: int
    first: float
    last: float
    width: int = W
    height: int = H
    pad: int = PAD


def flow_chart(days: Sequence[tuple[float, int, int]]) -> FlowChart:
    """Bars for (day, entered, left) triples, scaled to the busiest day."""
    peak = max([1, *(max(e, g) for _, e, g in days)])
    mid = H / 2
    step = (W - 2 * PAD) / max(1, len(days))
    half = mid - PAD / 2
    bars = [
        Bar(day, e, g, round(PAD + i * step, 1), round(max(1.0, step - 2), 1),
            round(half * e / peak, 1), round(half * g / peak, 1))
        for i, (day, e, g) in enumerate(days)
    ]  # fmt: skip
    return FlowChart(bars=bars, peak=peak, mid=mid)


def line_chart(points: Sequence[tuple[float, int]]) -> LineChart | None:
    """A polyline for (time, size) points; None without points."""
    if not points:
        return None
    t0, t1 = points[0][0], max(points[-1][0], points[0][0] + 1)
    top = max([1, *(s for _, s in points)])
    coords = " ".join(
        f"{PAD + (W - 2 * PAD) * (t - t0) / (t1 - t0):.1f},{H - PAD - (H - 2 * PAD) * s / top:.1f}"
        for t, s in points
    )
    return LineChart(points=coords, top=top, first=t0, last=t1)
