"""CBPE: expected AUC against scikit-learn and a hand case; the estimate is unbiased."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.monitoring.estimate import (
    estimate_gap,
    expected_auc,
    expected_precision_recall,
    expected_quality,
)
from models.monitoring.lists import served_lists
from models.monitoring.realised import realised_quality


def test_expected_auc_by_hand() -> None:
    # p = (0.8, 0.2): 0.8 * 0.8 (the high row outranks the low) + half of each row
    # paired with itself (0.16 / 2 each), over (sum p)(sum 1 - p) = 1
    assert expected_auc(np.array([0.8, 0.2])) == pytest.approx(0.80)


@pytest.mark.parametrize("ties", [False, True])
def test_expected_auc_equals_sklearn_on_duplicated_rows(ties: bool) -> None:
    rng = np.random.default_rng(5)
    p = rng.beta(1, 8, 400)
    score = np.round(p, 2) if ties else p
    y = np.r_[np.ones(len(p)), np.zeros(len(p))]
    w = np.r_[p, 1 - p]
    want = roc_auc_score(y, np.r_[score, score], sample_weight=w)
    assert expected_auc(p, score) == pytest.approx(want, abs=1e-12)


def _day(rng: np.random.Generator, n: int, day: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of": pd.Timestamp(day),
            "district": "示例区",
            "town": rng.choice(["北镇", "南镇", "西镇"], n),
            "worker_id": [f"w-{i % 40}" for i in range(n)],
            "person_id": [f"p-{i:05d}" for i in range(n)],
            "p": rng.beta(0.8, 10, n),
        }
    )


def test_expected_precision_by_hand() -> None:
    p = np.array([0.9, 0.5, 0.1, 0.1])
    sel = np.array([True, True, False, False])
    assert expected_precision_recall(p, sel) == pytest.approx((0.7, 1.4 / 1.6))


def test_cbpe_is_unbiased_when_calibrated() -> None:
    """Labels drawn from p: the mean realised figure over draws equals the estimate."""
    rng = np.random.default_rng(6)
    served = _day(rng, 3000, "2025-01-01")
    est = expected_quality(served)
    d = est[est["scope"] == "district"].iloc[0]
    draws = []
    for _ in range(200):
        y = (rng.random(len(served)) < served["p"].to_numpy()).astype(float)
        real = realised_quality(served, y)
        draws.append(real[real["scope"] == "district"].iloc[0])
    got = pd.DataFrame(draws)
    k = 300
    se = np.sqrt(d["precision_at_10pct"] * (1 - d["precision_at_10pct"]) / k) / np.sqrt(200)
    assert got["precision_at_10pct"].mean() == pytest.approx(d["precision_at_10pct"], abs=4 * se)
    assert got["roc_auc"].mean() == pytest.approx(d["roc_auc"], abs=0.005)
    assert got["brier"].mean() == pytest.approx(d["brier"], abs=0.001)
    gap = estimate_gap(est, realised_quality(served, y))
    assert {"precision_at_10pct_gap", "roc_auc_gap"} <= set(gap.columns)
    assert len(gap) == len(est)


def test_lists_follow_served_ranks_and_rebuild_them_with_person_id_ties() -> None:
    frame = pd.DataFrame(
        {
            "as_of": pd.Timestamp("2025-01-01"),
            "district": "示例区",
            "worker_id": ["w-1"] * 3 + ["w-2"] * 3 + ["w-3"] * 4,
            "person_id": [f"p-{i}" for i in range(10)],
            "p": [0.5, 0.5, 0.1, 0.9, 0.2, 0.2, 0.3, 0.3, 0.3, 0.01],
        }
    )
    top, case = served_lists(frame, 0.10, 2)
    assert top.tolist() == [i == 3 for i in range(10)]  # ceil(0.1 * 10) = 1: the 0.9
    assert case.tolist() == [True, True, False, True, True, False, True, True, False, False]
    ranked = frame.assign(rank_district=range(10, 0, -1), rank_caseload=1)
    top, case = served_lists(ranked, 0.10, 2)
    assert top.tolist() == [i == 9 for i in range(10)] and case.all()
