"""Geometry of the small server-side SVG charts (templates draw it; no script needed).

Contract: :func:`trend` turns score-history points (``as_of``, ``outcome``,
``p``) into two polylines on a fixed canvas, one per outcome, each with its own
line style and marker shape so they stay apart in greyscale print.
:func:`driver_bars` turns drivers (``contribution`` in log-odds) into bars
around a centre line: risk-raising to the right, risk-lowering to the left,
all on one scale so the longest bar is the strongest driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from features.config import OUTCOMES
from serving.web.reasons import kind_of

OUTCOME_ORDER = OUTCOMES


@dataclass
class Series:
    outcome: str
    points: str
    markers: list[tuple[float, float, str, float]] = field(default_factory=list)


@dataclass
class Trend:
    width: int
    height: int
    left: int
    bottom: int
    top: int
    right: int
    series: list[Series]
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]


def _nice_max(p: float) -> float:
    for cap in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0):
        if p <= cap:
            return cap
    return 1.0


def trend(points: Sequence[dict[str, Any]], width: int = 560, height: int = 170) -> Trend | None:
    """Two lines of probability over scoring dates, or None with fewer than one point."""
    if not points:
        return None
    left, right, top, bottom = 44, 12, 10, 26
    days = sorted({_day(pt["as_of"]) for pt in points})
    first, last = days[0], days[-1]
    span = max((last - first).days, 1)
    y_max = _nice_max(max(float(pt["p"]) for pt in points))
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(d: date) -> float:
        if first == last:
            return left + plot_w / 2
        return round(left + plot_w * (d - first).days / span, 1)

    def y(p: float) -> float:
        return round(top + plot_h * (1 - p / y_max), 1)

    series = []
    for outcome in OUTCOME_ORDER:
        mine = sorted(
            (pt for pt in points if pt["outcome"] == outcome), key=lambda pt: _day(pt["as_of"])
        )
        if not mine:
            continue
        marks = [
            (x(_day(pt["as_of"])), y(float(pt["p"])), str(_day(pt["as_of"])), float(pt["p"]))
            for pt in mine
        ]
        series.append(Series(outcome, " ".join(f"{mx},{my}" for mx, my, _, _ in marks), marks))
    ticks = [(y(v), f"{v * 100:.0f}%") for v in (0.0, y_max / 2, y_max)]
    labels = [(x(first), str(first))]
    if last != first:
        labels.append((x(last), str(last)))
    return Trend(width, height, left, bottom, top, right, series, ticks, labels)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


@dataclass
class Bar:
    driver: dict[str, Any]
    raises: bool
    x: float
    width: float
    group: str = "recent"  # "recent" signs (and concerns) or "background" facts


def driver_bars(drivers: Sequence[dict[str, Any]], width: int = 200) -> list[Bar]:
    """One bar per driver, sharing a scale; the centre line is at ``width / 2``."""
    if not drivers:
        return []
    half = width / 2 - 2
    strongest = max(abs(float(d["contribution"])) for d in drivers) or 1.0
    bars = []
    for d in drivers:
        c = float(d["contribution"])
        w = round(max(abs(c) / strongest * half, 2.0), 1)
        raises = c > 0
        group = "background" if kind_of(d) == "background" else "recent"
        bars.append(Bar(d, raises, width / 2 if raises else round(width / 2 - w, 1), w, group))
    return bars
