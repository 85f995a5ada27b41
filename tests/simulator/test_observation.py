"""Observation is a pure trace: how densely people are watched never changes the world.

And the worker's reactions happen: warning signs are followed by a home visit
within days; the hidden state behind the truth can be replayed for diagnostics.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator import simulate
from simulator.config import load_config
from simulator.hidden import hidden_state

pytestmark = pytest.mark.xdist_group("simulator_district")

#: Event types the hidden world decides (labels, cohort, exits); everything
#: else is a trace.
WORLD = ("urine_test", "hair_test", "lost_contact", "contact_restored", "program_exit",
         "transfer_in", "transfer_out")  # fmt: skip


def _quiet_config():
    cfg = load_config()
    o = cfg.observation
    quiet = o.model_copy(
        update={
            "follow_up_share": dict.fromkeys(o.follow_up_share, 0.0),
            "watch_visit_factor": 1.0,
            "family_concern_monthly": 0.0,
            "home_visit_monthly": 0.3,
            "medicine_monthly": {"base": 0.0, "craving": 0.0, "using": 0.5},
        }
    )
    return cfg.model_copy(update={"observation": quiet})


def _world(out: Path) -> pd.DataFrame:
    ev = pd.read_parquet(out / "events.parquet", columns=["person_id", "ts", "type", "result"])
    ev = ev[ev["type"].isin(WORLD)].copy()
    ev["day"] = ev["ts"].dt.normalize()  # times of day are drawn with the traces
    return ev.drop(columns="ts").sort_values(["person_id", "day", "type"]).reset_index(drop=True)


def test_observation_density_does_not_change_the_world_or_the_truth(tmp_path):
    start, end = date(2024, 1, 1), date(2024, 12, 31)
    simulate(800, start, end, seed=5, out=tmp_path / "dense")
    simulate(800, start, end, seed=5, out=tmp_path / "sparse", config=_quiet_config())
    dense, sparse = _world(tmp_path / "dense"), _world(tmp_path / "sparse")
    pd.testing.assert_frame_equal(dense, sparse)
    digest = {
        k: hashlib.sha256((tmp_path / k / "truth.parquet").read_bytes()).hexdigest()
        for k in ("dense", "sparse")
    }
    assert digest["dense"] == digest["sparse"]
    count = {
        k: len(pd.read_parquet(tmp_path / k / "events.parquet", columns=["type"]))
        for k in ("dense", "sparse")
    }
    assert count["dense"] > count["sparse"] * 1.3


def test_warning_signs_are_followed_up_within_days(tables):
    ev = tables["events"]
    ev = ev.assign(day=ev["ts"].dt.normalize())
    visits = ev.loc[ev["type"] == "home_visit", ["person_id", "day"]]
    missed = ev.loc[
        (ev["type"] == "check_in") & (ev["result"] == "missed"), ["person_id", "day"]
    ].drop_duplicates()
    lo, hi = load_config().observation.follow_up_days
    pairs = missed.merge(visits, on="person_id", suffixes=("", "_visit"))
    gap = (pairs["day_visit"] - pairs["day"]).dt.days
    seen = pairs.loc[(gap >= lo) & (gap <= hi)].drop_duplicates(["person_id", "day"])
    share = len(seen) / len(missed)
    # 80% get a follow-up; some others get a routine visit in the same days anyway.
    # Absconded people miss every check-in and are visited regardless.
    assert share > 0.75, share
    # Without reactions, a routine visit lands in a 6-day span ~20% of the time.
    per_month = len(visits) / ev["person_id"].nunique() / 36
    assert share > 2 * (1 - np.exp(-per_month * (hi - lo + 1) / 30.44))


def test_hidden_state_replays_the_world_behind_the_truth(tmp_path):
    start, end = date(2024, 1, 1), date(2024, 12, 31)
    simulate(800, start, end, seed=9, out=tmp_path)
    truth = pd.read_parquet(tmp_path / "truth.parquet")
    truth["as_of"] = pd.to_datetime(truth["as_of"]).astype("datetime64[us]")
    truth = truth.pivot_table(index=["person_id", "as_of"], columns="outcome", values="p")
    hidden = hidden_state(800, start, end, seed=9).set_index(["person_id", "as_of"])
    assert hidden.index.sort_values().equals(truth.index.sort_values())
    rows = truth.join(hidden)
    # Absconded, not yet flagged: certain to be flagged, never tested.
    assert (rows.loc[rows["absconded"], "loss_of_contact"] == 1.0).all()
    assert (rows.loc[rows["absconded"], "relapse"] == 0.0).all()
    using = rows["using"] & ~rows["absconded"]
    assert rows.loc[using, "relapse"].mean() > 5 * rows.loc[~using, "relapse"].mean()
