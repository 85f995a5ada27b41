"""The fairness table on a hand-built frame."""

from __future__ import annotations

import pandas as pd
import pytest

from models.fairness import fairness_table, flags


def _frame() -> pd.DataFrame:
    # group A (largest, 6 rows): 2 positives, selects 1 pos + 1 neg
    # group B (4 rows): 2 positives, selects 0 pos + 2 neg
    rows = [
        ("A", 1, 1, 0.5), ("A", 1, 0, 0.5), ("A", 0, 1, 0.05), ("A", 0, 0, 0.05),
        ("A", 0, 0, 0.05), ("A", 0, 0, 0.05),
        ("B", 1, 0, 0.3), ("B", 1, 0, 0.3), ("B", 0, 1, 0.6), ("B", 0, 1, 0.6),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["attr_sex", "y", "selected", "prob"])


def test_rates_disparities_and_flags():
    t = fairness_table(_frame(), ("sex",), min_group_size=1, min_group_positives=1)
    a = t.set_index("group").loc["A"]
    b = t.set_index("group").loc["B"]
    assert bool(a["reference"]) and not bool(b["reference"])
    assert a["fpr"] == pytest.approx(1 / 4) and b["fpr"] == pytest.approx(2 / 2)
    assert a["fnr"] == pytest.approx(1 / 2) and b["fnr"] == pytest.approx(2 / 2)
    assert a["precision"] == pytest.approx(1 / 2) and b["precision"] == pytest.approx(0.0)
    assert b["fpr_disparity"] == pytest.approx(4.0)
    assert b["fnr_disparity"] == pytest.approx(2.0)
    assert b["precision_disparity"] == pytest.approx(0.0)
    assert a["calibration"] == pytest.approx((2 * 0.5 + 4 * 0.05) / 6 / (2 / 6))
    assert b["calibration"] == pytest.approx(0.45 / 0.5)
    assert flags(t) == {"sex=B:fpr", "sex=B:fnr", "sex=B:precision", "sex=A:calibration"}


def test_small_groups_are_reported_but_never_flagged():
    t = fairness_table(_frame(), ("sex",), min_group_size=5, min_group_positives=3)
    assert len(t) == 2
    assert flags(t) == set()
