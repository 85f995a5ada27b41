"""Ingestion: the contract at the door, on SQLite and on a real PostgreSQL cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from features import ingest as ingest_module
from features.ingest import ingest_dir, ingest_frames
from features.store import load_events, load_persons
from tests.factories import event, events_frame, person, persons_frame

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"


def _counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        n_persons = conn.execute(sa.text("SELECT count(*) FROM persons")).scalar_one()
        n_events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    return int(n_persons), int(n_events)


def test_examples_load_with_nothing_rejected_and_twice_adds_nothing(engine, tmp_path):
    first = ingest_dir(engine, EXAMPLES, tmp_path)
    assert first.ok, first.rejections
    assert (first.persons.stored, first.events.stored) == (4, 27)
    second = ingest_dir(engine, EXAMPLES, tmp_path)
    assert (second.persons.stored, second.events.stored) == (0, 0)
    assert (second.persons.already, second.events.already) == (4, 27)
    assert _counts(engine) == (4, 27)


def test_round_trip_is_canonical(engine):
    ingest_frames(
        engine,
        persons_frame(person(person_id="p-1", first_use_year="", household="")),
        events_frame(
            event("e1", "2023-03-06T01:30:00Z", "check_in", result="attended"),
            event(
                "e2",
                "2023-03-20T10:00:00",
                "urine_test",
                result="negative",
                recorded_at="2023-03-21T16:00:00+08:00",
                source="lab",
            ),
            event("e3", "2023-04-01T08:00:00", "controlled_medicine_purchase", value="2.5"),
        ),
    )
    people = load_persons(engine)
    assert people.loc[0, "program_start"] == pd.Timestamp("2023-03-01")
    assert pd.isna(people.loc[0, "first_use_year"]) and pd.isna(people.loc[0, "household"])
    assert people["birth_year"].dtype == "Int64"
    got = load_events(engine).set_index("event_id")
    # Times with a zone are converted to Asia/Shanghai local; an empty recorded_at is ts.
    assert got.loc["e1", "ts"] == pd.Timestamp("2023-03-06 09:30:00")
    assert got.loc["e1", "recorded_at"] == got.loc["e1", "ts"]
    assert got.loc["e2", "recorded_at"] == pd.Timestamp("2023-03-21 16:00:00")
    assert got.loc["e3", "value"] == 2.5
    assert got["ts"].dtype == "datetime64[us]"
    before = load_events(engine, recorded_before=pd.Timestamp("2023-03-21 16:00:00"))
    assert list(before["event_id"]) == ["e1"]


@pytest.mark.parametrize(
    ("row", "column", "code"),
    [
        (
            event("x", "2023-05-01T09:00:00", "chek_in", result="attended"),
            "type",
            "unknown_event_type",
        ),
        (event("x", "2023-05-01T09:00:00", person_id="nobody"), "person_id", "unknown_person"),
        (
            event("x", "2023-05-01T09:00:00", recorded_at="2023-04-30T09:00:00"),
            "recorded_at",
            "recorded_before_ts",
        ),
        (event("x", "yesterday at nine"), "ts", "bad_datetime"),
        (
            event("x", "2023-05-01T09:00:00", recorded_at="2023-13-01"),
            "recorded_at",
            "bad_datetime",
        ),
        (event("x", "2023-05-01T09:00:00", "urine_test", result="maybe"), "result", "bad_result"),
        (event("x", "2023-05-01T09:00:00", "check_in"), "result", "bad_result"),
        (event("x", "2023-05-01T09:00:00", value="lots"), "value", "bad_number"),
        (event("", "2023-05-01T09:00:00"), "event_id", "missing_required"),
    ],
)
def test_each_bad_event_is_rejected_by_name_and_good_rows_kept(engine, tmp_path, row, column, code):
    good = event("ok", "2023-05-02T09:00:00")
    result = ingest_frames(
        engine,
        persons_frame(person()),
        events_frame(good, row),
        events_file="events.csv",
        reports_dir=tmp_path,
    )
    lines = result.rejections
    assert list(lines[["file", "row", "column", "code"]].itertuples(index=False, name=None)) == [
        ("events.csv", 2, column, code)
    ]
    assert list(load_events(engine)["event_id"]) == ["ok"]
    report = json.loads(result.report_path.read_text("utf-8"))
    assert report["rejections"][0]["code"] == code
    assert report["events"]["rejected"] == 1 and report["events"]["stored"] == 1


@pytest.mark.parametrize(
    ("override", "column", "code"),
    [
        ({"sex": "X"}, "sex", "not_in_choices"),
        ({"birth_year": "19x6"}, "birth_year", "bad_int"),
        ({"program_start": "2023-02-30"}, "program_start", "bad_date"),
        ({"program_end": "2020-01-01"}, "program_end", "end_before_start"),
        ({"prior_compulsory_detox": "-1"}, "prior_compulsory_detox", "out_of_range"),
        ({"worker_id": ""}, "worker_id", "missing_required"),
        ({"first_use_year": "1970"}, "first_use_year", "first_use_before_birth"),
    ],
)
def test_each_bad_person_is_rejected_by_name(engine, override, column, code):
    result = ingest_frames(
        engine, persons_frame(person(person_id="ok"), person(person_id="bad", **override))
    )
    assert list(
        result.rejections[["row", "column", "code"]].itertuples(index=False, name=None)
    ) == [(2, column, code)]
    assert list(load_persons(engine)["person_id"]) == ["ok"]


def test_free_text_is_never_echoed_into_a_reason(engine):
    result = ingest_frames(engine, persons_frame(person(person_id="", marital="张三的备注")))
    assert "张三" not in result.rejections.to_string()


def test_duplicate_ids_in_one_file(engine):
    result = ingest_frames(
        engine,
        persons_frame(
            person(person_id="a"),
            person(person_id="a", sex="F"),
            person(person_id="b"),
            person(person_id="b"),
        ),
        events_frame(
            event("e1", "2023-05-01T09:00:00", person_id="b"),
            event("e1", "2023-05-01T09:00:00", person_id="b"),
        ),
    )
    assert list(result.rejections[["row", "code"]].itertuples(index=False, name=None)) == [
        (1, "duplicate_conflict"),
        (2, "duplicate_conflict"),
    ]
    assert result.persons.duplicates_dropped == 1 and result.events.duplicates_dropped == 1
    assert _counts(engine) == (1, 1)


def test_conflict_with_stored_is_rejected_and_a_fixed_file_loads(engine):
    ingest_frames(engine, persons_frame(person()), events_frame(event("e1", "2023-05-01T09:00:00")))
    clash = ingest_frames(
        engine,
        persons_frame(person(sex="F")),
        events_frame(event("e1", "2023-05-01T10:00:00"), event("e2", "2023-05-02T10:00:00")),
    )
    assert sorted(clash.rejections["code"]) == ["conflicts_with_stored"] * 2
    assert clash.events.stored == 1
    fixed = ingest_frames(
        engine,
        persons_frame(person()),
        events_frame(event("e1", "2023-05-01T09:00:00"), event("e2", "2023-05-02T10:00:00")),
    )
    assert fixed.ok and fixed.events.already == 2
    assert load_persons(engine).loc[0, "sex"] == "M"


def test_missing_column_rejects_the_whole_file(engine):
    raw = persons_frame(person()).drop(columns=["program"])
    result = ingest_frames(engine, raw)
    assert list(
        result.rejections[["row", "column", "code"]].itertuples(index=False, name=None)
    ) == [(0, "program", "missing_column")]
    assert result.persons.rejected == 1 and _counts(engine) == (0, 0)


def test_events_may_refer_to_persons_stored_earlier(engine):
    ingest_frames(engine, persons_frame(person()))
    result = ingest_frames(engine, events_raw=events_frame(event("e1", "2023-05-01T09:00:00")))
    assert result.ok and _counts(engine) == (1, 1)


def test_csv_and_parquet_store_the_same_rows(tmp_path):
    from features.store import make_engine

    parquet_dir = tmp_path / "pq"
    parquet_dir.mkdir()
    for table in ("persons", "events"):
        pd.read_csv(EXAMPLES / f"{table}.csv", dtype=str, keep_default_na=False).to_parquet(
            parquet_dir / f"{table}.parquet"
        )
    frames = []
    for name, source in (("csv", EXAMPLES), ("pq", parquet_dir)):
        eng = make_engine(f"sqlite:///{tmp_path / name}.db")
        assert ingest_dir(eng, source).ok
        frames.append((load_persons(eng), load_events(eng)))
    pd.testing.assert_frame_equal(frames[0][0], frames[1][0])
    pd.testing.assert_frame_equal(frames[0][1], frames[1][1])


def test_an_interrupted_load_leaves_the_store_as_it_was(engine, monkeypatch):
    ingest_dir(engine, EXAMPLES)
    before = (_counts(engine), load_events(engine))
    real = ingest_module._bulk_load

    def fail_on_events(conn, stage, good, names):
        if stage.name == "stage_events":
            real(conn, stage, good.iloc[: len(good) // 2], names)
            raise KeyboardInterrupt("interrupted mid-load")
        real(conn, stage, good, names)

    monkeypatch.setattr(ingest_module, "_bulk_load", fail_on_events)
    with pytest.raises(KeyboardInterrupt):
        ingest_frames(
            engine,
            persons_frame(person(person_id="new")),
            events_frame(
                event("n1", "2023-05-01T09:00:00", person_id="new"),
                event("n2", "2023-05-02T09:00:00", person_id="new"),
            ),
        )
    assert _counts(engine) == before[0]
    pd.testing.assert_frame_equal(load_events(engine), before[1])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ingest_runs")).scalar_one() == 1


def test_a_killed_load_leaves_the_store_as_it_was(db_url, tmp_path):
    """SIGKILL in the middle of storing events: the database shows nothing of that load."""
    from features.store import make_engine

    engine = make_engine(db_url)
    ingest_dir(engine, EXAMPLES)
    data = tmp_path / "new"
    data.mkdir()
    persons_frame(person(person_id="new")).to_csv(data / "persons.csv", index=False)
    events_frame(
        *[event(f"n{i}", "2023-05-01T09:00:00", person_id="new") for i in range(1000)]
    ).to_csv(data / "events.csv", index=False)
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from features import ingest
        from features.store import make_engine
        real = ingest._bulk_load
        def killed(conn, stage, good, names):
            real(conn, stage, good, names)
            if stage.name == "stage_events":
                os.kill(os.getpid(), signal.SIGKILL)
        ingest._bulk_load = killed
        ingest.ingest_dir(make_engine({db_url!r}), Path({str(data)!r}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env={**os.environ}, timeout=120
    )
    assert proc.returncode == -9, proc.stderr.decode()
    assert _counts(engine) == (4, 27)
    engine.dispose()


def test_cli_reports_a_broken_file(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sunflower.cli import app

    broken = tmp_path / "broken"
    shutil.copytree(EXAMPLES, broken)
    text = (
        (broken / "events.csv")
        .read_text("utf-8")
        .replace(
            "ev-3,fx-000101,2023-04-03T14:00:00,,home_visit",
            "ev-3,fx-000101,2023-04-03T14:00:00,,house_call",
        )
    )
    (broken / "events.csv").write_text(text, "utf-8")
    monkeypatch.setenv("SUNFLOWER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SUNFLOWER_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["ingest", str(broken)])
    assert result.exit_code == 3
    assert "unknown_event_type" in result.output and "house_call" in result.output
    report = json.loads(next((tmp_path / "home" / "reports").glob("ingest-*.json")).read_text())
    assert report["rejections"] == [
        {
            "file": "events.csv",
            "row": 3,
            "column": "type",
            "code": "unknown_event_type",
            "reason": "unknown event type 'house_call'",
        }
    ]
    assert report["events"]["stored"] == 26
