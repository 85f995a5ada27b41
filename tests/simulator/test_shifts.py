"""Shift options (issue 16): off by default, each does what docs/simulator.md says,
truth stays exact."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from simulator import load_config, simulate
from simulator.config import SimConfig

START, END, SHIFT = date(2023, 1, 1), date(2025, 6, 30), date(2024, 7, 1)
HORIZON = pd.Timedelta(days=90)


def _shifted(cfg: SimConfig) -> SimConfig:
    on = {"enabled": True, "start": SHIFT}
    shifts = cfg.shifts.model_copy(
        update={
            name: getattr(cfg.shifts, name).model_copy(update=on)
            for name in ("new_drug", "testing", "worker_leaves", "ageing")
        }
    )
    return cfg.model_copy(update={"shifts": shifts})


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, pd.DataFrame]]:
    cfg = load_config()
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for name, config in (("plain", cfg), ("shifted", _shifted(cfg))):
        folder = Path(tmp_path_factory.mktemp(name))
        simulate(3000, START, END, seed=11, out=folder, config=config)
        out[name] = {
            t: pd.read_parquet(folder / f"{t}.parquet") for t in ("persons", "events", "truth")
        }
    return out


def test_every_shift_is_off_by_default_and_dated_on_a_month_start():
    cfg = load_config()
    assert not cfg.shifts.any
    with pytest.raises(ValidationError, match="1st of a month"):
        cfg.shifts.testing.model_validate({"enabled": True, "start": "2024-07-15"})


def _per_person_month(
    events: pd.DataFrame, kind: str, persons: pd.Series | None = None
) -> tuple[float, float]:
    ev = events[events["type"] == kind]
    if persons is not None:
        ev = ev[ev["person_id"].isin(persons)]
    ts = pd.to_datetime(ev["ts"])
    before = (
        (ts >= pd.Timestamp(SHIFT) - pd.DateOffset(months=6)) & (ts < pd.Timestamp(SHIFT))
    ).sum()
    after = (
        (ts >= pd.Timestamp(SHIFT)) & (ts < pd.Timestamp(SHIFT) + pd.DateOffset(months=6))
    ).sum()
    return float(before), float(after)


def test_thinner_testing_halves_urine_tests_after_the_date(worlds):
    plain = _per_person_month(worlds["plain"]["events"], "urine_test")
    shifted = _per_person_month(worlds["shifted"]["events"], "urine_test")
    assert shifted[0] == pytest.approx(plain[0], rel=0.05)  # the same hidden world before
    assert shifted[1] / plain[1] == pytest.approx(0.5, abs=0.1)


def test_the_worker_leaving_cuts_contacts_in_one_town_only(worlds):
    persons = worlds["shifted"]["persons"]
    town = persons["town"].value_counts().index[0]  # town_rank 1: the most people
    inside = persons.loc[persons["town"] == town, "person_id"]
    outside = persons.loc[persons["town"] != town, "person_id"]
    for kind in ("home_visit", "counselling"):
        p_in = _per_person_month(worlds["plain"]["events"], kind, inside)
        s_in = _per_person_month(worlds["shifted"]["events"], kind, inside)
        p_out = _per_person_month(worlds["plain"]["events"], kind, outside)
        s_out = _per_person_month(worlds["shifted"]["events"], kind, outside)
        assert s_in[1] / p_in[1] < 0.5, kind
        assert s_out[1] / p_out[1] == pytest.approx(1.0, abs=0.2), kind


def _entrants(persons: pd.DataFrame, after: bool) -> pd.DataFrame:
    start = pd.to_datetime(persons["program_start"])
    ramped = pd.Timestamp(SHIFT) + pd.DateOffset(months=6)
    return persons[start >= ramped] if after else persons[start < pd.Timestamp(SHIFT)]


def test_a_new_drug_spreads_among_entrants_after_the_date(worlds):
    cfg = load_config().shifts.new_drug
    persons = worlds["shifted"]["persons"]
    later = (_entrants(persons, True)["primary_drug"] == cfg.drug).mean()
    earlier = (_entrants(persons, False)["primary_drug"] == cfg.drug).mean()
    assert earlier == pytest.approx(0.07, abs=0.03)
    assert later == pytest.approx(cfg.entrant_share + 0.65 * 0.07, abs=0.08)


def test_ageing_makes_entrants_older_after_the_date(worlds):
    def age(persons: pd.DataFrame, after: bool) -> float:
        rows = _entrants(persons, after)
        return float((pd.to_datetime(rows["program_start"]).dt.year - rows["birth_year"]).mean())

    years = load_config().shifts.ageing.years
    gap = age(worlds["shifted"]["persons"], True) - age(worlds["plain"]["persons"], True)
    assert gap == pytest.approx(years, abs=1.5)
    assert age(worlds["shifted"]["persons"], False) == pytest.approx(
        age(worlds["plain"]["persons"], False), abs=0.01
    )


@pytest.mark.parametrize("outcome", ["relapse", "loss_of_contact"])
def test_truth_still_matches_what_happened_under_every_shift(worlds, outcome):
    """Mean p vs the observed label rate on windows from 3 months before the shift on
    (the windows that straddle it included), |z| < 4 (as tests/simulator/test_truth.py)."""
    events, truth = worlds["shifted"]["events"], worlds["shifted"]["truth"]
    truth = truth.assign(as_of=pd.to_datetime(truth["as_of"]))
    keep = (truth["as_of"] >= pd.Timestamp(SHIFT) - pd.DateOffset(months=3)) & (
        truth["as_of"] + HORIZON <= events["ts"].max()
    )
    keep &= truth["as_of"].dt.month.isin([1, 4, 7, 10])  # windows that do not overlap
    rows = truth.loc[keep & (truth["outcome"] == outcome), ["person_id", "as_of", "p"]]
    if outcome == "relapse":
        hit = events["type"].isin(["urine_test", "hair_test"]) & events["result"].isin(
            ["positive", "refused"]
        )
    else:
        hit = events["type"] == "lost_contact"
    pairs = rows.merge(events.loc[hit, ["person_id", "ts"]], on="person_id", how="left")
    inside = (pairs["ts"] >= pairs["as_of"]) & (pairs["ts"] < pairs["as_of"] + HORIZON)
    y = inside.groupby([pairs["person_id"], pairs["as_of"]]).any()
    rows = rows.join(y.rename("y"), on=["person_id", "as_of"])
    z = (rows["y"].sum() - rows["p"].sum()) / np.sqrt((rows["p"] * (1 - rows["p"])).sum())
    assert abs(z) < 4, (z, rows["y"].mean(), rows["p"].mean())
