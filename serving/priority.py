"""Who first today (今日优先): one order over both outcomes, for a worker's morning.

Contract: :func:`priority_key` is the one place the order rule lives; the list
page, its printable version and every other caller sort with it. It takes a
person's stored list items of the run, one per outcome (``{"relapse": item,
"loss_of_contact": item}``, items as :mod:`serving.daily.run_rows` stores them), and
orders by, in turn:

1. the **higher band of either outcome**, highest first — so a 极高风险 of
   either outcome is never below a lower band of any outcome;
2. **an alert now** (报到逾期, 新阳性, …) before none;
3. the **higher of the two probabilities, each as a multiple of its
   outcome's usual rate** (the lower bound of 中风险, :data:`serving.bands.THRESHOLDS`):
   the outcomes have different base rates (relapse ~10 % in 90 days, loss of
   contact ~3 %), so 5 % lost contact (1.7× usual) is more unusual than 10 %
   relapse (1.0×), and the bands are drawn at the same multiples (1×, 2×, 4×);
4. the person id, so the order is stable.

Bands are absolute (a quiet caseload can be all 低风险), so the first person
is the most urgent of the list, not necessarily urgent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from serving.bands import THRESHOLDS

Items = Mapping[str, Mapping[str, Any]]


def times_usual(outcome: str, p: float) -> float:
    """``p`` as a multiple of the outcome's usual 90-day rate (the 中风险 lower bound)."""
    return float(p) / THRESHOLDS[outcome][0]


def top_band(items: Items) -> int:
    """The higher band (1–4) of either outcome."""
    return max(int(i["band"]["level"]) for i in items.values())


def priority_key(person_id: str, items: Items) -> tuple[int, int, float, str]:
    """Sort key of one person (ascending sort puts the most urgent first)."""
    alerted = any(i.get("alerts") for i in items.values())
    unusual = max(times_usual(o, i["p"]) for o, i in items.items())
    return (-top_band(items), -int(alerted), -unusual, person_id)


def in_priority_order(people: Iterable[tuple[str, Items]]) -> list[tuple[str, Items]]:
    """``(person_id, items)`` pairs, most urgent first."""
    return sorted(people, key=lambda pair: priority_key(*pair))
