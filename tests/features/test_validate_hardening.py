"""Issue 15 hardening at the door: numbers, dates, text and ids that must be rejected by name.

Every case is one bad row beside a good one: the bad row is named (file, row,
column, code), the good row is stored, nothing crashes.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest

from features.ingest import ingest_frames
from features.store import load_events, load_persons
from features.validate import validate_events, validate_persons
from tests.factories import event, events_frame, person, persons_frame


def _lines(rejections: pd.DataFrame) -> list[tuple[object, ...]]:
    return list(rejections[["row", "column", "code"]].itertuples(index=False, name=None))


# -- 3. non-finite and huge numbers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("prior_compulsory_detox", "inf", "not_finite"),
        ("prior_compulsory_detox", "-inf", "not_finite"),
        ("prior_compulsory_detox", "Infinity", "not_finite"),
        ("prior_compulsory_detox", "1e30", "out_of_range"),
        ("prior_compulsory_detox", "100", "out_of_range"),
        ("prior_compulsory_detox", "1.5", "bad_int"),
        ("prior_compulsory_detox", "nan", "bad_int"),
        ("birth_year", "inf", "not_finite"),
        ("birth_year", "1e30", "out_of_range"),
        ("birth_year", "1986.5", "bad_int"),
        ("first_use_year", "-1e308", "out_of_range"),
    ],
)
def test_integer_columns_reject_non_finite_huge_and_fractional(column, value, code):
    v = validate_persons(
        persons_frame(person(person_id="ok"), person(person_id="bad", **{column: value}))
    )
    assert _lines(v.rejections) == [(2, column, code)]
    assert list(v.good["person_id"]) == ["ok"]
    assert v.good[column].dtype == "Int64"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("inf", "not_finite"),
        ("-inf", "not_finite"),
        ("1e308", "out_of_range"),
        ("1e7", "out_of_range"),
        ("-1", "out_of_range"),
        ("NaN", "bad_number"),
    ],
)
def test_event_value_must_be_finite_and_bounded(value, code):
    v = validate_events(
        events_frame(
            event("ok", "2024-05-01T09:00:00", "leave_notice", value="3"),
            event("bad", "2024-05-01T10:00:00", "leave_notice", value=value),
        ),
        ["p-1"],
        file="events.csv",
    )
    assert _lines(v.rejections) == [(2, "value", code)]
    assert list(v.good["value"]) == [3.0]


def test_typed_parquet_numbers_are_checked_like_text():
    raw = persons_frame(person(person_id="ok"), person(person_id="bad"))
    raw["prior_compulsory_detox"] = [1.0, float("inf")]
    v = validate_persons(raw)
    assert _lines(v.rejections) == [(2, "prior_compulsory_detox", "not_finite")]
    assert list(v.good["prior_compulsory_detox"]) == [1]


def test_cli_ingest_names_non_finite_numbers_and_stores_the_good_rows(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sunflower.cli import app

    folder = tmp_path / "in"
    folder.mkdir()
    persons_frame(
        person(person_id="p-1"), person(person_id="p-2", prior_compulsory_detox="inf")
    ).to_csv(folder / "persons.csv", index=False)
    events_frame(
        event("e-1", "2024-05-01T09:00:00", "leave_notice", value="2"),
        event("e-2", "2024-05-02T09:00:00", "leave_notice", value="1e308"),
        event("e-3", "2024-05-03T09:00:00", "leave_notice", value="-inf"),
    ).to_csv(folder / "events.csv", index=False)
    home = tmp_path / "home"
    monkeypatch.setenv("SUNFLOWER_HOME", str(home))
    monkeypatch.delenv("SUNFLOWER_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 3, result.output
    report = json.loads(next((home / "reports").glob("ingest-*.json")).read_text("utf-8"))
    assert sorted((r["file"], r["row"], r["column"], r["code"]) for r in report["rejections"]) == [
        ("events.csv", 2, "value", "out_of_range"),
        ("events.csv", 3, "value", "not_finite"),
        ("persons.csv", 2, "prior_compulsory_detox", "not_finite"),
    ]
    assert (report["persons"]["stored"], report["events"]["stored"]) == (1, 1)


def test_ingest_stores_only_finite_values(engine):
    result = ingest_frames(
        engine,
        persons_frame(person(person_id="p-1")),
        events_frame(
            event("e-1", "2024-05-01T09:00:00", "controlled_medicine_purchase", value="4"),
            event("e-2", "2024-05-01T10:00:00", "controlled_medicine_purchase", value="inf"),
        ),
    )
    assert _lines(result.rejections) == [(2, "value", "not_finite")]
    assert list(load_events(engine)["value"]) == [4.0]
    assert list(load_persons(engine)["person_id"]) == ["p-1"]


# -- 4. implausible dates ----------------------------------------------------------------------

TODAY = date(2026, 12, 6)


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("program_start", "0001-01-01", "date_out_of_range"),
        ("program_start", "1899-12-31", "date_out_of_range"),
        ("program_start", "2027-12-08", "date_out_of_range"),  # > today + 366 days
        ("program_end", "2099-01-01", "date_out_of_range"),
        ("program_end", "9999-12-31", "date_out_of_range"),
        ("program_end", "2036-12-04", "date_out_of_range"),  # > today + 3,650 days
    ],
)
def test_person_dates_outside_the_plausible_range_are_rejected(column, value, code):
    v = validate_persons(
        persons_frame(person(person_id="ok"), person(person_id="bad", **{column: value})),
        today=TODAY,
    )
    assert _lines(v.rejections) == [(2, column, code)]
    assert list(v.good["person_id"]) == ["ok"]


def test_person_dates_at_the_bounds_are_kept():
    v = validate_persons(
        persons_frame(
            person(person_id="a", program_start="1900-01-01", program_end="2036-12-03"),
            person(person_id="b", program_start="2027-12-07", program_end="2030-12-06"),
        ),
        today=TODAY,
    )
    assert v.rejections.empty and list(v.good["person_id"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("ts", "recorded_at", "column"),
    [
        ("0001-01-01T00:00:00", "", "ts"),
        ("1899-12-31T23:59:59", "2024-01-01T00:00:00", "ts"),
        ("2099-01-01T00:00:00", "", "ts"),
        ("2024-01-01T00:00:00", "9999-12-31T23:59:59", "recorded_at"),
        ("2026-12-08T00:00:00", "", "ts"),  # more than a day after today
    ],
)
def test_event_times_outside_the_plausible_range_are_rejected(ts, recorded_at, column):
    v = validate_events(
        events_frame(
            event("ok", "2026-12-07T23:59:59"),  # within a day of today: clock skew
            event("bad", ts, recorded_at=recorded_at),
        ),
        ["p-1"],
        today=TODAY,
    )
    assert _lines(v.rejections) == [(2, column, "date_out_of_range")]
    assert list(v.good["event_id"]) == ["ok"]


def test_a_date_without_a_time_is_local_not_a_zone_offset():
    # '2024-01-01' ends in '-01', which once read as a UTC-1 offset and moved the time
    v = validate_events(
        events_frame(event("a", "2024-01-01"), event("b", "2024-01-01T00:00-01:00")), ["p-1"]
    )
    assert v.rejections.empty
    assert [str(t) for t in v.good["ts"]] == ["2024-01-01 00:00:00", "2024-01-01 09:00:00"]


def test_api_and_cli_use_the_real_clock(engine):
    far = (date.today() + timedelta(days=4000)).isoformat()
    result = ingest_frames(
        engine, persons_frame(person(person_id="ok"), person(person_id="far", program_end=far))
    )
    assert _lines(result.rejections) == [(2, "program_end", "date_out_of_range")]
    assert list(load_persons(engine)["person_id"]) == ["ok"]


# -- 5. text: scalars only, bounded, safe ids, no control characters ---------------------------


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("person_id", "a/b", "bad_id"),
        ("person_id", "../p-1", "bad_id"),
        ("person_id", "p 1", "bad_id"),
        ("person_id", "=HYPERLINK(1)", "bad_id"),
        ("person_id", "p" * 65, "too_long"),
        ("person_id", "p-1\x00", "control_character"),
        ("worker_id", "w\x1b[31m", "control_character"),
        ("worker_id", "w/1", "bad_name"),
        ("district", "示例区\\东", "bad_name"),
        ("town", "镇" * 200_000, "too_long"),
        ("town", "东\u202e镇", "control_character"),
        ("education", "x" * 1_000_000, "too_long"),
        ("education", "x" * 65, "too_long"),
        ("education", "line\nbreak", "control_character"),
        ("marital", "single\x00", "control_character"),
        ("sex", "M\x00", "control_character"),
    ],
)
def test_person_text_is_bounded_safe_and_free_of_control_characters(column, value, code):
    v = validate_persons(
        persons_frame(person(person_id="ok"), person(**{"person_id": "bad", column: value}))
    )
    assert _lines(v.rejections) == [(2, column, code)]
    assert list(v.good["person_id"]) == ["ok"]
    reason = v.rejections["reason"].iloc[0]
    assert len(reason) < 200 and "\x00" not in reason and "\x1b" not in reason


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("event_id", "e" * 129, "too_long"),
        ("event_id", "e\x00", "control_character"),
        ("result", "x" * 41, "too_long"),
        ("source", "lab\x1b", "control_character"),
        ("ts", "2024-05-01T09:00:00\x00", "bad_datetime"),
    ],
)
def test_event_text_is_bounded_and_free_of_control_characters(column, value, code):
    bad = event("bad", "2024-05-01T10:00:00")
    bad[column] = value
    v = validate_events(events_frame(event("ok", "2024-05-01T09:00:00"), bad), ["p-1"])
    assert _lines(v.rejections) == [(2, column, code)]
    assert list(v.good["event_id"]) == ["ok"]
    assert "\x00" not in v.rejections["reason"].iloc[0]


def test_objects_and_lists_are_not_turned_into_text():
    from features.validate import frame_from_records

    rows = [
        person(person_id="ok", birth_year=1986),
        {**person(person_id="b"), "town": {"name": "东镇"}},
        {**person(person_id="c"), "birth_year": [1986]},
        {**person(person_id="d"), "prior_compulsory_detox": True},
    ]
    raw = frame_from_records(rows, tuple(rows[0]))
    v = validate_persons(raw)
    assert _lines(v.rejections) == [
        (2, "town", "not_scalar"),
        (3, "birth_year", "not_scalar"),
        (4, "prior_compulsory_detox", "bad_int"),
    ]
    assert list(v.good["person_id"]) == ["ok"] and list(v.good["birth_year"]) == [1986]
    assert "东镇" not in " ".join(v.rejections["reason"])


def test_a_parquet_list_column_is_rejected_by_name():
    raw = persons_frame(person(person_id="ok"), person(person_id="b")).astype(object)
    raw.at[1, "district"] = ["示例区"]
    v = validate_persons(raw)
    assert _lines(v.rejections) == [(2, "district", "not_scalar")]


def test_every_text_limit_fits_the_store():
    from features.contract import EVENT_COLUMNS, PERSON_COLUMNS
    from features.store import events, persons

    for columns, table in ((PERSON_COLUMNS, persons), (EVENT_COLUMNS, events)):
        for col in columns:
            if col.kind == "string":
                assert col.text is not None, col.name
                assert col.text.max_length <= table.c[col.name].type.length, col.name


# -- 11. files that are empty, ragged, BOM-prefixed or not UTF-8 --------------------------------


def _cli_ingest(folder, home, monkeypatch):
    from typer.testing import CliRunner

    from sunflower.cli import app

    monkeypatch.setenv("SUNFLOWER_HOME", str(home))
    monkeypatch.delenv("SUNFLOWER_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["ingest", str(folder)])
    reports = sorted((home / "reports").glob("ingest-*.json"))
    return result, json.loads(reports[-1].read_text("utf-8")) if reports else None


def _write(folder, name, text, encoding="utf-8"):
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(text.encode(encoding))


def _persons_csv(*rows):
    return persons_frame(*rows).to_csv(index=False)


def test_an_empty_events_file_is_named_and_the_persons_are_stored(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    _write(folder, "persons.csv", _persons_csv(person(person_id="p-1")))
    _write(folder, "events.csv", "")
    result, report = _cli_ingest(folder, tmp_path / "home", monkeypatch)
    assert result.exit_code == 3, result.output
    assert report["persons"]["stored"] == 1
    lines = {(r["file"], r["row"], r["code"]) for r in report["rejections"]}
    assert ("events.csv", 0, "empty_file") in lines


def test_a_row_with_extra_or_missing_fields_is_rejected_alone(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    text = _persons_csv(person(person_id="p-1"), person(person_id="p-2"), person(person_id="p-3"))
    lines = text.splitlines()
    lines[2] += ",surplus"  # p-2: one field too many
    lines[3] = lines[3].rsplit(",", 2)[0]  # p-3: two fields short
    _write(folder, "persons.csv", "\n".join(lines) + "\n")
    _write(
        folder, "events.csv", events_frame(event("e-1", "2024-05-01T09:00:00")).to_csv(index=False)
    )
    result, report = _cli_ingest(folder, tmp_path / "home", monkeypatch)
    assert result.exit_code == 3, result.output
    ragged = [
        (r["row"], r["code"], r["reason"])
        for r in report["rejections"]
        if r["code"] == "ragged_row"
    ]
    assert ragged == [
        (2, "ragged_row", "17 fields; the header has 16"),
        (3, "ragged_row", "14 fields; the header has 16"),
    ]
    assert (report["persons"]["stored"], report["events"]["stored"]) == (1, 1)


def test_a_utf8_bom_is_read_and_a_gbk_file_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    _write(folder, "persons.csv", "\ufeff" + _persons_csv(person(person_id="p-1")))
    result, report = _cli_ingest(folder, tmp_path / "home", monkeypatch)
    assert result.exit_code == 0 and report["persons"]["stored"] == 1, result.output

    gbk = tmp_path / "gbk"
    _write(
        gbk, "persons.csv", _persons_csv(person(person_id="p-2"), person(person_id="p-3")), "gbk"
    )
    _write(gbk, "events.csv", events_frame(event("e-1", "2024-05-01T09:00:00")).to_csv(index=False))
    result, report = _cli_ingest(gbk, tmp_path / "home", monkeypatch)  # p-1 is stored
    assert result.exit_code == 3, result.output
    (line,) = [r for r in report["rejections"] if r["file"] == "persons.csv"]
    assert (line["row"], line["code"]) == (0, "not_utf8")
    assert "line 2" in line["reason"] and "UTF-8" in line["reason"]
    assert report["events"]["stored"] == 1  # the other file's good rows are kept
