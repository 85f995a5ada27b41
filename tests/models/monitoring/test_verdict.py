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
