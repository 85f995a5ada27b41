"""Pharmacies and placement bases in the simulated district (simulator.details)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import CONTROLLED_MEDICINES, split_purchase
from features.placement import eligibility, load_placement_config
from simulator import simulate
from simulator.config import load_config
from simulator.engine import seeded_run
from simulator.io import write_events, write_persons


def test_details_change_nothing_else(tmp_path: Path) -> None:
    start, end, seed = date(2024, 1, 1), date(2025, 6, 30), 5
    simulate(400, start, end, seed=seed, out=tmp_path / "new", truth=False)
    pop, events, _ = seeded_run(
        load_config(), 400, start, (end - start).days + 1, seed, truth=False
    )
    (tmp_path / "old").mkdir()
    pid = write_persons(pop, start, tmp_path / "old" / "persons.parquet")
    write_events(events, start, pid, tmp_path / "old" / "events.parquet")
    for name in ("persons",):
        assert pd.read_parquet(tmp_path / "old" / f"{name}.parquet").equals(
            pd.read_parquet(tmp_path / "new" / f"{name}.parquet")
        )
    old = pd.read_parquet(tmp_path / "old" / "events.parquet")
    new = pd.read_parquet(tmp_path / "new" / "events.parquet")
    head, reports = new.iloc[: len(old)], new.iloc[len(old) :]
    for col in ("event_id", "person_id", "ts", "recorded_at", "type", "source"):
        assert head[col].equals(old[col]), col
    changed = ~((head["result"] == old["result"]) | (head["result"].isna() & old["result"].isna()))
    assert set(head.loc[changed, "type"]) <= {"controlled_medicine_purchase", "employment_start"}
    valued = ~((head["value"] == old["value"]) | (head["value"].isna() & old["value"].isna()))
    assert set(head.loc[valued, "type"]) <= {"employment_start"}
    assert set(reports["type"]) <= {"employment_start"}


def test_purchases_name_a_medicine_and_a_pharmacy_of_the_district(tables) -> None:
    ev, persons = tables["events"], tables["persons"]
    bought = ev.loc[ev["type"] == "controlled_medicine_purchase"]
    parts = bought["result"].map(split_purchase)
    assert parts.map(lambda p: p[0] in CONTROLLED_MEDICINES and p[1] is not None).all()
    pharmacy = parts.map(lambda p: p[1])
    district = bought["person_id"].map(persons.set_index("person_id")["district"])
    assert (pharmacy.groupby(pharmacy).transform(lambda s: district[s.index].nunique()) == 1).all()
    usual = pharmacy.groupby(bought["person_id"]).agg(lambda s: s.value_counts().iloc[0] / len(s))
    assert 0.5 < float(usual.mean()) < 0.95  # mostly the usual pharmacy, not only


def test_placements_at_bases_of_the_persons_town_with_growing_insurance(district, tables) -> None:
    out, _ = district
    ev, persons = tables["events"], tables["persons"]
    config = load_placement_config(out / "placement.yaml")
    town_of_base = {b.id: b.town for b in config.bases}
    starts = ev.loc[ev["type"] == "employment_start"]
    at_base = starts.loc[starts["result"].isin(town_of_base)]
    share = (
        at_base.drop_duplicates(["person_id", "ts"]).shape[0]
        / starts.drop_duplicates(["person_id", "ts"]).shape[0]
    )
    assert 0.1 < share < 0.3  # at_base_share 0.2
    town = at_base["person_id"].map(persons.set_index("person_id")["town"])
    assert (at_base["result"].map(town_of_base) == town).all()
    versions = at_base.sort_values("recorded_at").groupby(["person_id", "ts"])
    assert (versions["value"].apply(lambda v: bool(np.all(np.diff(v) >= 0)))).all()
    assert (versions["recorded_at"].apply(lambda r: r.is_unique)).all()
    report = eligibility(config, ev, pd.Timestamp("2026-01-01")).bases
    assert report["eligible"].any() and (report["insurance_subsidy_yuan"] > 0).all()
    assert report["registered"].all()  # every placement names a registered base
