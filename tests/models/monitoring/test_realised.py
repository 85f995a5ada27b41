"""Realised quality: labels by the one label rule, metrics by hand, the fairness convention."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import build_labels
from models.fairness import fairness_table
from models.monitoring.realised import (
    audit_attributes,
    calibration_by_band,
    closed,
    fairness_by_run,
    realised_quality,
    served_labels,
)
from tests.features.history import ev, events, persons


def test_a_run_is_closed_after_the_horizon_and_the_settling_days() -> None:
    assert not closed(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-04-14"), 90)
    assert closed(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-04-15"), 90)


def test_served_labels_are_build_labels() -> None:
    people = persons(
        {"person_id": "p-1"},
        {"person_id": "p-2"},
        {"person_id": "p-3", "program_end": "2025-02-10"},
    )
    evs = events(
        ev("2025-01-20", "urine_test", "positive", person_id="p-1", recorded_at="2025-01-23"),
        ev("2025-02-20", "urine_test", "negative", person_id="p-2"),
        ev("2025-02-01", "urine_test", "negative", person_id="p-3"),
        ev("2025-06-01", "home_visit", "met", person_id="p-2"),
    )
    served = pd.DataFrame(
        {
            "person_id": ["p-1", "p-2", "p-3", "p-1"],
            "as_of": pd.to_datetime(["2025-01-01"] * 3 + ["2025-05-01"]),
        }
    )
    got = served_labels(served, persons=people, events=evs, outcome="relapse")
    # p-1 positive inside the window; p-2 none; p-3 window ends at the planned end: 0;
    # p-1 on 2025-05-01: the window is not observed to its end -> unknown
    assert got[:3].tolist() == [1.0, 0.0, 0.0] and np.isnan(got[3])
    direct = build_labels(served[["person_id", "as_of"]], persons=people, events=evs)
    want = direct["label"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    np.testing.assert_array_equal(got, want)


def _served() -> tuple[pd.DataFrame, np.ndarray]:
    n = 20
    frame = pd.DataFrame(
        {
            "as_of": pd.Timestamp("2025-01-01"),
            "district": "示例区",
            "town": ["北镇"] * 10 + ["南镇"] * 10,
            "worker_id": [f"w-{i // 5}" for i in range(n)],
            "person_id": [f"p-{i:02d}" for i in range(n)],
            "p": np.linspace(0.95, 0.0, n),
            "band": [4] * 5 + [3] * 5 + [2] * 5 + [1] * 5,
        }
    )
    y = np.zeros(n)
    y[[0, 2, 5, 12]] = 1.0
    y[19] = np.nan
    return frame, y


def test_realised_quality_by_hand() -> None:
    frame, y = _served()
    got = realised_quality(frame, y).set_index(["scope", "key"])
    d = got.loc[("district", "示例区")]
    # top 10% of 20 = rows 0, 1: one positive; 4 positives among 19 known rows
    assert d["precision_at_10pct"] == 0.5 and d["recall_at_10pct"] == 0.25
    # top 2 per caseload of 5: rows 0,1 / 5,6 / 10,11 / 15,16: positives 0 and 5
    assert d["precision_at_2_per_worker"] == 2 / 8 and d["recall_at_2_per_worker"] == 0.5
    assert d["n"] == 19 and d["unknown"] == 1 and d["positives"] == 4
    p = frame["p"].to_numpy()[:19]
    assert d["brier"] == pytest.approx(np.mean((p - y[:19]) ** 2))
    assert d["observed_over_expected"] == pytest.approx(4 / p.sum())
    south = got.loc[("town", "南镇")]
    assert south["selected_at_10pct"] == 0 and south["positives"] == 1


def test_calibration_by_band_by_hand() -> None:
    frame, y = _served()
    got = calibration_by_band(frame, y).set_index("band")
    assert got.loc[4, "positives"] == 2 and got.loc[4, "n"] == 5
    assert got.loc[1, "n"] == 4  # the unknown row is left out
    assert got.loc[4, "observed_over_expected"] == pytest.approx(0.4 / frame["p"][:5].mean())


def test_fairness_follows_the_training_convention() -> None:
    frame, y = _served()
    people = persons(
        *[{"person_id": f"p-{i:02d}", "sex": "F" if i % 3 else "M"} for i in range(20)]
    )
    rows = audit_attributes(frame, people)
    assert set(rows["attr_age_band"]) == {"30-39"}  # born 1986, on 2025-01-01
    got = fairness_by_run(rows, y, ("sex", "age_band"), min_group_size=1, min_group_positives=1)
    known = rows[~np.isnan(y)].assign(y=y[~np.isnan(y)].astype(int), prob=frame["p"][:19])
    want = fairness_table(
        known.assign(selected=np.arange(19) < 2),
        ("sex", "age_band"),
        min_group_size=1,
        min_group_positives=1,
    )
    pd.testing.assert_frame_equal(got.drop(columns="as_of"), want)


def test_realised_quality_per_fairness_group() -> None:
    frame, y = _served()
    frame["attr_drug"] = ["heroin"] * 4 + ["methamphetamine"] * 16
    got = realised_quality(frame, y).set_index(["scope", "key"])
    heroin = got.loc[("group", "drug=heroin")]
    assert heroin["n"] == 4 and heroin["positives"] == 2  # rows 0 and 2
    assert heroin["precision_at_10pct"] == 0.5  # rows 0, 1 are the district's top 2
    assert ("group", "drug=methamphetamine") in got.index
