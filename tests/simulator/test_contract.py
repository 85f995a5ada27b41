"""The output is in the input contract: the foundation's validation rejects nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from features.contract import EVENT_TYPES, PERSON_COLUMN_NAMES
from features.validate import validate_events, validate_persons

pytestmark = pytest.mark.xdist_group("simulator_district")


def test_persons_and_events_pass_validation_with_no_rejection(tables):
    persons = validate_persons(tables["persons"], file="persons.parquet")
    assert persons.rejections.empty, persons.rejections.head()
    assert len(persons.good) == len(tables["persons"])
    events = validate_events(tables["events"], persons.good["person_id"], file="events.parquet")
    assert events.rejections.empty, events.rejections.head()
    assert len(events.good) == len(tables["events"])


def test_every_event_type_appears(tables):
    assert set(tables["events"]["type"]) == set(EVENT_TYPES)


def test_ids_are_pseudonymous_and_unique(tables):
    persons, events = tables["persons"], tables["events"]
    assert list(persons.columns) == list(PERSON_COLUMN_NAMES)
    assert persons["person_id"].str.fullmatch(r"p-\d{6,}").all()
    assert persons["worker_id"].str.fullmatch(r"w-\d{2,}-\d{2,}").all()
    assert events["event_id"].is_unique and persons["person_id"].is_unique


def test_times_are_naive_local_and_recorded_after_they_happen(tables):
    events = tables["events"]
    assert events["ts"].dt.tz is None
    assert (events["recorded_at"] >= events["ts"]).all()
    lab = events["type"].isin(["urine_test", "hair_test"])
    lag = (events.loc[lab, "recorded_at"] - events.loc[lab, "ts"]).dt.days
    assert lag.between(1, 5).all()


def test_events_stay_inside_each_persons_programme(tables):
    persons, events = tables["persons"], tables["events"]
    start = pd.to_datetime(persons.set_index("person_id")["program_start"])
    first = events.groupby("person_id")["ts"].min()
    assert (first >= start.reindex(first.index)).all()
    exits = events.loc[events["type"] == "program_exit"]
    assert exits["person_id"].is_unique
    last = events.groupby("person_id")["ts"].max()
    exit_ts = exits.set_index("person_id")["ts"]
    assert (last.reindex(exit_ts.index) == exit_ts).all()
