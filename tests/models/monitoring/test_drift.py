"""Drift statistics against hand-computed values and scipy; the report on a known shift."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from models.monitoring.drift import band_shares, drift_report, js_distance, psi, psi_p_value
from models.monitoring.reference import bin_counts, build_reference, quantile_edges, survival


def test_psi_by_hand() -> None:
    # shares 0.5/0.5 -> 0.25/0.75: 0.25 ln 2 + 0.25 ln 1.5
    assert psi(np.array([50, 50]), np.array([25, 75])) == pytest.approx(
        0.25 * math.log(2) + 0.25 * math.log(1.5), abs=1e-12
    )
    assert psi(np.array([3, 5, 2]), np.array([6, 10, 4])) == pytest.approx(0.0, abs=1e-15)
    a, b = np.array([10, 30, 60]), np.array([30, 30, 40])
    assert psi(a, b) == pytest.approx(psi(b, a))  # symmetric
    # an empty bin is floored at 1e-4 instead of giving infinity
    assert psi(np.array([50, 50, 0]), np.array([50, 40, 10])) == pytest.approx(
        (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    )


def test_js_distance_by_hand_and_scipy() -> None:
    # p = (.5, .5), q = (.25, .75), m = (.375, .625), base 2
    kl_pm = 0.5 * math.log2(0.5 / 0.375) + 0.5 * math.log2(0.5 / 0.625)
    kl_qm = 0.25 * math.log2(0.25 / 0.375) + 0.75 * math.log2(0.75 / 0.625)
    hand = math.sqrt((kl_pm + kl_qm) / 2)
    assert js_distance(np.array([50, 50]), np.array([25, 75])) == pytest.approx(hand, abs=1e-12)
    assert hand == pytest.approx(0.220895, abs=1e-6)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 50, 8), rng.integers(0, 50, 8)
    assert js_distance(a, b) == pytest.approx(jensenshannon(a / a.sum(), b / b.sum(), base=2))


def test_noise_p_value_is_uniform_under_no_change() -> None:
    rng = np.random.default_rng(1)
    shares = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    ref = rng.multinomial(2000, shares)
    p = [psi_p_value(ref, rng.multinomial(500, shares)) for _ in range(400)]
    assert 0.02 < np.mean(np.asarray(p) < 0.05) < 0.09
    shifted = rng.multinomial(500, [0.2, 0.2, 0.2, 0.25, 0.15])
    assert psi_p_value(ref, shifted) < 1e-4


def test_bins_edges_and_missing() -> None:
    counts, missing = bin_counts(np.array([0, 1, 1.5, 2, 3, np.nan]), [1.0, 2.0])
    assert counts == [2, 2, 1] and missing == 1
    # a count feature: one bin per value, whatever the quantiles
    x = np.array([0] * 80 + [1] * 15 + [2] * 5, dtype=float)
    assert quantile_edges(x, 10) == [0.0, 1.0]
    assert bin_counts(x, quantile_edges(x, 10))[0] == [80, 15, 5]


def test_band_shares_from_the_survival_grid_are_exact() -> None:
    p = np.random.default_rng(2).beta(1, 12, 5000)
    thresholds = (0.03, 0.08, 0.20)
    direct = np.bincount(np.searchsorted(thresholds, p, side="right"), minlength=4) / len(p)
    assert band_shares(survival(p), thresholds) == pytest.approx(direct.tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="grid"):
        band_shares(survival(p), (0.0305,))


def _cohort(rng: np.random.Generator, n: int, age_shift: float = 0.0, heroin: float = 0.4):
    towns = rng.choice(["北镇", "南镇"], n)
    drug = rng.random(n) < heroin
    frame = pd.DataFrame(
        {
            "as_of": pd.Timestamp("2025-01-01"),
            "person_id": [f"p-{i}" for i in range(n)],
            "worker_id": [f"w-{i % 20}" for i in range(n)],
            "district": "示例区",
            "town": towns,
            "age": rng.normal(38 + age_shift, 8, n).round(),
            "missed_checkins_30d": rng.poisson(0.3, n).astype(float),
            "drug_heroin": drug.astype(float),
            "drug_methamphetamine": (~drug).astype(float),
        }
    )
    return frame


NAMES = ["age", "missed_checkins_30d", "drug_heroin", "drug_methamphetamine"]


def test_report_finds_the_shifted_feature_only() -> None:
    rng = np.random.default_rng(3)
    ref_rows = _cohort(rng, 6000)
    prob = rng.beta(1, 10, len(ref_rows))
    reference = build_reference(ref_rows, NAMES, prob, outcome="relapse")
    assert set(reference["category_columns"]) == {"drug"}
    same = drift_report(reference, _cohort(rng, 3000), rng.beta(1, 10, 3000))
    district = same[same["scope"] == "district"].set_index("item")
    assert (district["psi"] < 0.02).all()
    assert set(same.loc[same["scope"] == "town", "key"]) == {"北镇", "南镇"}
    moved = drift_report(
        reference, _cohort(rng, 3000, age_shift=8, heroin=0.7), rng.beta(1, 10, 3000)
    )
    district = moved[moved["scope"] == "district"].set_index("item")
    assert district.loc["age", "psi"] > 0.25 and district.loc["drug", "psi"] > 0.25
    assert district.loc["missed_checkins_30d", "psi"] < 0.02
    assert district.loc["drug", "category"] in {"heroin", "methamphetamine"}
    assert district.loc["drug", "category_now"] - district.loc["drug", "category_ref"] == (
        pytest.approx(0.3, abs=0.04)
        if district.loc["drug", "category"] == "heroin"
        else pytest.approx(-0.3, abs=0.04)
    )


def test_reference_holds_aggregates_only() -> None:
    rng = np.random.default_rng(4)
    rows = _cohort(rng, 500)
    reference = build_reference(rows, NAMES, rng.beta(1, 10, 500), outcome="relapse")
    text = str(reference)
    assert "p-1" not in text and "w-1" not in text
    prof = reference["district"]
    assert sum(prof["features"]["age"]["counts"]) + prof["features"]["age"]["missing"] == 500
    assert sum(prof["categories"]["drug"]["counts"].values()) == 500
