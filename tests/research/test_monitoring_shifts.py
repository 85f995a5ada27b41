"""The monitoring study on a small district: quiet without a shift, retrain after a strong one.

3,000 persons (the study's figures in docs/models.md use 10,000): no
"retrain recommended" in 12 monthly runs of the unshifted world, and a urine
schedule cut to a quarter is recommended for retraining once the first
post-shift windows close.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from models.panel import load_dir
from research.monitoring_shifts import END, START, monitor_world, run_dates, world_config
from simulator import simulate

SHIFT = date(2025, 3, 1)


def _run(tmp: Path, cfg) -> dict:
    simulate(3000, START, END, 7, tmp, truth=False, config=cfg)
    dates = run_dates(date(2025, 1, 1))
    return monitor_world(load_dir(tmp), pd.Timestamp("2025-01-01"), dates, lambda _m: None)


@pytest.mark.slow
def test_no_retrain_without_a_shift_and_retrain_after_a_strong_one(tmp_path: Path) -> None:
    quiet = _run(tmp_path / "none", world_config("none", SHIFT))
    for outcome, r in quiet.items():
        assert "retrain" not in r["levels"], (outcome, r["levels"], r["first_watch"])
    cfg = world_config("testing", SHIFT)
    strong = cfg.shifts.testing.model_copy(update={"urine_factor": 0.25})
    cfg = cfg.model_copy(update={"shifts": cfg.shifts.model_copy(update={"testing": strong})})
    shifted = _run(tmp_path / "testing", cfg)["relapse"]
    assert shifted["first_retrain"] is not None, shifted["levels"]
    assert shifted["first_retrain"]["date"] >= "2025-05-01"  # not before post-shift labels
    assert shifted["realised_oe"][-1] < 0.8
