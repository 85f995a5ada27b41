"""The lean event reader gives the rows and values of load_events (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import store
from features.ingest import ingest_frames
from features.store import load_event_columns, load_events
from tests.factories import event, events_frame, person, persons_frame

COLUMNS = ["person_id", "ts", "recorded_at", "type", "result", "value"]


def _district(engine) -> None:
    ingest_frames(
        engine,
        persons_frame(person(person_id="p-1"), person(person_id="p-2"), person(person_id="p-3")),
        events_frame(
            event("e1", "2023-03-06T01:30:00Z", "check_in", result="attended"),
            event(
                "e2",
                "2023-03-20T10:00:00.250001",
                "urine_test",
                person_id="p-2",
                result="negative",
                recorded_at="2023-03-21T16:00:00+08:00",
                source="lab",
            ),
            event("e3", "2023-04-01T08:00:00", "controlled_medicine_purchase", value="2.5"),
            event("e4", "2023-04-02T08:00:00", "home_visit", person_id="p-3", result="not_home"),
            event("e5", "2023-04-03T08:00:00", "home_visit", person_id="p-2"),
            event("e6", "2023-04-04T23:59:59.999999", "check_in", result="missed"),
            event("e7", "2023-04-05T08:00:00", "leave_notice", person_id="p-3", value="12"),
            event("e8", "2023-04-06T08:00:00", "home_visit", result="left a note, it's fine"),
        ),
    )


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "person_id": frame["person_id"].astype(str).to_numpy(),
            "ts": frame["ts"].to_numpy(),
            "recorded_at": frame["recorded_at"].to_numpy(),
            "type": frame["type"].astype(str).to_numpy(),
            "result": [None if pd.isna(v) else str(v) for v in frame["result"]],
            "value": frame["value"].to_numpy(dtype=float),
        }
    )
    return out.sort_values(["person_id", "ts", "type"]).reset_index(drop=True)


@pytest.mark.parametrize("fetch_rows", [2, 10_000])
def test_same_rows_and_values_as_load_events(engine, monkeypatch, fetch_rows):
    _district(engine)
    monkeypatch.setattr(store, "FETCH_ROWS", fetch_rows)  # several chunks, or one
    for before in (None, pd.Timestamp("2023-04-02 08:00:00"), pd.Timestamp("2023-03-21 16:00")):
        lean = load_event_columns(engine, recorded_before=before)
        full = load_events(engine, recorded_before=before)
        assert len(lean) == len(full) > 0
        pd.testing.assert_frame_equal(_canonical(lean), _canonical(full[COLUMNS]))
        assert isinstance(lean["person_id"].dtype, pd.CategoricalDtype)
        assert isinstance(lean["type"].dtype, pd.CategoricalDtype)
        assert lean["ts"].dtype == "datetime64[us]" == lean["recorded_at"].dtype
        assert lean["value"].dtype == np.float64
    results = set(load_event_columns(engine)["result"].dropna().astype(str))
    assert {"attended", "not_home", "left a note, it's fine"} <= results  # coded and free text
    later = load_event_columns(engine).set_index(pd.Index(["x"] * 8))
    assert (later["recorded_at"] > later["ts"]).sum() == 1  # only e2 was recorded later


def test_no_events(engine):
    store.migrate(engine)
    lean = load_event_columns(engine, recorded_before=pd.Timestamp("2024-01-01"))
    assert list(lean.columns) == COLUMNS and len(lean) == 0
    assert lean["ts"].dtype == "datetime64[us]"


def test_texts_of_mixed_widths_are_parsed_by_pandas():
    got = store._micros(["2023-04-04 23:59:59.999999", "2023-04-05 08:00:00"])
    want = pd.to_datetime(["2023-04-04 23:59:59.999999", "2023-04-05 08:00:00"], format="ISO8601")
    assert got.tolist() == want.astype("datetime64[us]").asi8.tolist()
    same = store._micros(["2023-04-05 08:00:00", "2023-04-06 09:30:00"])
    assert same.view("datetime64[us]").tolist()[1] == pd.Timestamp("2023-04-06 09:30")
