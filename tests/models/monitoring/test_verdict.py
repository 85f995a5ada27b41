"""The verdict: quiet on a calibrated unchanged world, watch on drift, retrain on labels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.monitoring.drift import drift_report
from models.monitoring.estimate import expected_quality
from models.monitoring.realised import realised_quality
from models.monitoring.reference import build_reference
from models.monitoring.verdict import Thresholds, closed_table, verdict
from tests.models.monitoring.test_drift import NAMES, _cohort


def _run(rng: np.random.Generator, day: str, n: int = 4000, **shift: float) -> pd.DataFrame:
    rows = _cohort(rng, n, **shift).assign(as_of=pd.Timestamp(day))
    risk = 0.02 + 0.04 * rows["missed_checkins_30d"] + 0.03 * rows["drug_heroin"]
    return rows.assign(p=np.clip(risk * rng.lognormal(0, 0.5, n), 0, 0.9))


def _monitor(runs: list[pd.DataFrame], labels: list[np.ndarray], reference: dict) -> list[str]:
    levels = []
    for k, today in enumerate(runs):
        drift = drift_report(reference, today, today["p"].to_numpy(), thresholds=(0.1, 0.2, 0.4))
        exp = expected_quality(today)
        done = [(r, y) for r, y in zip(runs[: max(k - 3, 0)], labels, strict=False)]
        if done:
            served = pd.concat([r for r, _ in done], ignore_index=True)
            y = np.concatenate([y for _, y in done])
            closed = closed_table(realised_quality(served, y), expected_quality(served))
        else:
            closed = pd.DataFrame()
        levels.append(verdict(drift, exp, closed, reference).level)
    return levels


def _reference(rng: np.random.Generator) -> dict:
    ref = _run(rng, "2024-10-01", 8000)
    return build_reference(
        ref, NAMES, ref["p"].to_numpy(), outcome="relapse", importance=dict.fromkeys(NAMES, 0.25)
    )


def test_twelve_calibrated_runs_of_an_unchanged_world_raise_no_alarm() -> None:
    rng = np.random.default_rng(7)
    reference = _reference(rng)
    runs = [_run(rng, f"2025-{m:02d}-01") for m in range(1, 13)]
    labels = [(rng.random(len(r)) < r["p"].to_numpy()).astype(float) for r in runs]
    assert _monitor(runs, labels, reference) == ["ok"] * 12


def test_a_shifted_input_is_watch_and_broken_calibration_is_retrain() -> None:
    rng = np.random.default_rng(8)
    reference = _reference(rng)
    runs = [_run(rng, f"2025-{m:02d}-01", age_shift=12 if m >= 3 else 0) for m in range(1, 13)]
    # from run 3 on, outcomes happen at half the stated probability
    labels = [
        (rng.random(len(r)) < r["p"].to_numpy() * (0.5 if k >= 2 else 1.0)).astype(float)
        for k, r in enumerate(runs)
    ]
    levels = _monitor(runs, labels, reference)
    assert levels[:2] == ["ok", "ok"]
    assert levels[2] == "watch"  # age moved, no labels yet
    assert "retrain" in levels[6:]  # two closed runs with too few positives


def test_small_towns_are_not_judged_on_drift() -> None:
    rng = np.random.default_rng(9)
    reference = _reference(rng)
    today = _run(rng, "2025-01-01", 150, age_shift=12)  # ~75 per town
    drift = drift_report(reference, today, today["p"].to_numpy())
    got = verdict(drift, expected_quality(today), pd.DataFrame(), reference, Thresholds())
    assert all(e["scope"] == "district" for e in got.evidence if e["level"] != "info")


def _closed(scope: str, key: str, positives: float, expected: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2025-01-01", "2025-02-01"]),
            "scope": scope,
            "key": key,
            "n": 800.0,
            "positives": positives,
            "expected_positives": expected,
            "selected_at_10pct": 80.0,
            "precision_at_10pct_realised": 0.30,
            "precision_at_10pct_expected": 0.30,
            "roc_auc_realised": 0.80,
            "roc_auc_expected": 0.80,
        }
    )


def test_a_misjudged_group_twice_in_a_row_is_retrain_a_town_only_watch() -> None:
    reference = {"expected": {}, "realised": {"roc_auc": 0.80}}
    empty = pd.DataFrame(columns=["scope", "key", "n_now", "psi"])
    group = verdict(
        empty, pd.DataFrame(columns=["scope"]), _closed("group", "drug=other", 60, 30), reference
    )
    assert group.level == "retrain"
    assert group.evidence[0]["what"] == "observed / expected positives"
    town = verdict(
        empty, pd.DataFrame(columns=["scope"]), _closed("town", "北镇", 60, 30), reference
    )
    assert town.level == "watch"
    calm = verdict(
        empty, pd.DataFrame(columns=["scope"]), _closed("group", "drug=other", 33, 30), reference
    )
    assert calm.level == "ok"


def test_totals_since_records_began_are_listed_not_acted_on() -> None:
    report = pd.DataFrame(
        {
            "scope": "district",
            "key": "all",
            "item": ["checkins_attended_all", "age"],
            "kind": "numeric",
            "importance": 0.2,
            "psi": 0.6,
            "p_value": 0.0,
            "n_now": 5000.0,
            "missing_change": 0.0,
            "cumulative": [True, False],
        }
    )
    got = verdict(report, pd.DataFrame(columns=["scope"]), pd.DataFrame(), {"expected": {}})
    levels = {e["what"]: e["level"] for e in got.evidence}
    assert levels == {"PSI checkins_attended_all": "info", "PSI age": "watch"}
