"""Ingest mappings: a source's own columns and codes, turned into the contract before validation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from features.contract import EVENT_COLUMN_NAMES, PERSON_COLUMN_NAMES
from features.ingest import ingest_dir
from features.mapping import MappingError, SourceMapping, apply_mapping, load_mapping
from features.store import load_events, load_persons
from features.validate import validate_events, validate_persons
from tests.fixtures.trial_cohort import MAPPING, make_trial_cohort

ROOT = Path(__file__).resolve().parents[2]
DOCS_EXAMPLE = ROOT / "docs" / "examples" / "mapping-trial.yaml"

PATIENTS = pd.DataFrame(
    {
        "patid": ["T0001", "T0002"],
        "sex": ["1", "2"],
        "yob": ["1980", "1995"],
        "site": ["S1", "S2"],
        "counsellor": ["C11", "C21"],
        "enrol_date": ["03/01/2022", "17/02/2022"],
        "planned_end": ["20/06/2022", "04/08/2022"],
        "drug": ["HER", "MA"],
        "first_use": ["2001", ""],
        "prior_tx": ["2", "0"],
        "resid": ["N", "L"],
        "lives_with": ["ALONE", "FAM"],
        "marital": ["Never married", ""],
        "educ": ["Junior high", "College"],
        "arm": ["A", "B"],
    }
)
VISITS = pd.DataFrame(
    {
        "recid": ["R1", "R2", "R3", "R4"],
        "patid": ["T0001", "T0001", "T0002", "T0002"],
        "visit_date": [
            "03/01/2022 09:30",
            "03/01/2022 09:35",
            "17/02/2022 14:00",
            "20/02/2022 10:00",
        ],
        "entered": ["", "04/01/2022 16:10", "17/02/2022 14:00", "21/02/2022 09:00"],
        "code": ["VISIT", "URINE", "URINE", "EXIT"],
        "res": ["ATT", "MISS", "POS", "JAIL"],
        "origin": ["CLIN", "LAB", "LAB", "CLIN"],
    }
)


def _plain(frame: pd.DataFrame) -> dict[str, list[object]]:
    """Column -> values, missing as None (dtypes aside: validation decides those)."""
    return {c: [None if pd.isna(v) else v for v in frame[c]] for c in frame.columns}


def test_the_trial_mapping_gives_the_exact_contract_frames():
    mapping = load_mapping(MAPPING)
    persons, events, report = apply_mapping(mapping, PATIENTS, VISITS, "patients.csv", "visits.csv")
    expected_persons = {
        "person_id": ["T0001", "T0002"],
        "sex": ["M", "F"],
        "birth_year": ["1980", "1995"],
        "district": ["trial", "trial"],
        "town": ["S1", "S2"],
        "worker_id": ["C11", "C21"],
        "program": ["community_detox", "community_detox"],
        "program_start": ["2022-01-03", "2022-02-17"],
        "program_end": ["2022-06-20", "2022-08-04"],
        "primary_drug": ["heroin", "methamphetamine"],
        "first_use_year": ["2001", ""],
        "prior_compulsory_detox": ["2", "0"],
        "household": ["non_local", "local"],
        "living": ["alone", "with_family"],
        "marital": ["single", None],
        "education": ["junior_high", "college"],
    }
    expected_events = {
        "event_id": ["R1", "R2", "R3", "R4"],
        "person_id": ["T0001", "T0001", "T0002", "T0002"],
        "ts": [
            "2022-01-03T09:30:00.000000",
            "2022-01-03T09:35:00.000000",
            "2022-02-17T14:00:00.000000",
            "2022-02-20T10:00:00.000000",
        ],
        "recorded_at": [
            None,
            "2022-01-04T16:10:00.000000",
            "2022-02-17T14:00:00.000000",
            "2022-02-21T09:00:00.000000",
        ],
        "type": ["check_in", "urine_test", "urine_test", "program_exit"],
        "result": ["attended", "refused", "positive", "custody"],
        "source": ["worker", "lab", "lab", "worker"],
    }
    assert persons is not None and events is not None
    # Contract column names in contract order (value has no source column: absent).
    assert list(persons.columns) == list(PERSON_COLUMN_NAMES)
    assert list(events.columns) == [c for c in EVENT_COLUMN_NAMES if c != "value"]
    # Columns only renamed are passed on as read (first_use_year "" stays "").
    assert _plain(persons) == expected_persons
    assert _plain(events) == expected_events
    assert [t.unmapped for t in report.tables] == [[], []]
    assert report.tables[0].ignored_columns == ["arm"]
    assert report.tables[0].columns["site"] == "town"
    # And the contract accepts them as they are.
    vp = validate_persons(persons, "patients.csv")
    assert vp.rejections.empty, vp.rejections
    ve = validate_events(events, vp.good["person_id"], "visits.csv")
    assert ve.rejections.empty, ve.rejections
    assert ve.good.loc[0, "recorded_at"] == pd.Timestamp("2022-01-03 09:30")


def test_typed_parquet_columns_are_mapped_as_text():
    mapping = SourceMapping.model_validate(
        {
            "name": "typed",
            "version": 2,
            "persons": {"values": {"sex": {1: "M", 2: "F"}, "prior_compulsory_detox": {99: None}}},
        }
    )
    raw = pd.DataFrame({"sex": [1.0, 2.0, None], "prior_compulsory_detox": [99, 1, 0]})
    frame, report = mapping.apply("persons", raw)
    assert frame["sex"].tolist()[:2] == ["M", "F"] and pd.isna(frame["sex"].iloc[2])
    assert pd.isna(frame["prior_compulsory_detox"].iloc[0])
    assert [(u.column, u.value, u.rows) for u in report.unmapped] == [
        ("prior_compulsory_detox", "0", 1),
        ("prior_compulsory_detox", "1", 1),
    ]
    assert mapping.version == "2"


def _write_foreign(folder: Path, patients: pd.DataFrame, visits: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    patients.to_csv(folder / "patients.csv", index=False)
    visits.to_csv(folder / "visits.csv", index=False)
    return folder


def test_unmapped_values_are_counted_per_column_and_value_and_reported(engine, tmp_path):
    patients = PATIENTS.copy()
    patients.loc[1, "sex"] = "9"
    patients.loc[0, "marital"] = "Separated"  # free text: counted, never shown
    visits = pd.concat([VISITS] * 3, ignore_index=True)
    visits["recid"] = [f"R{i}" for i in range(len(visits))]
    visits.loc[[0, 4, 8], "code"] = ["HAIR", "HAIR", "PHONE"]
    visits.loc[1, "origin"] = "POLICE"
    folder = _write_foreign(tmp_path / "in", patients, visits)

    result = ingest_dir(
        engine, folder, tmp_path / "reports", mapping=load_mapping(MAPPING), mapping_path=MAPPING
    )

    assert result.mapping is not None
    got = [(file, u.column, u.value, u.rows) for file, u in result.mapping.unmapped]
    assert got == [
        ("patients.csv", "sex", "9", 1),
        ("patients.csv", "marital", "(1 distinct; free text, not shown)", 1),
        ("visits.csv", "type", "HAIR", 2),
        ("visits.csv", "type", "PHONE", 1),
        ("visits.csv", "source", "POLICE", 1),
    ]
    # Not a whole-file rejection: each row goes on to validation, which judges it by name.
    rejected = result.rejections[["file", "row", "column", "code"]].values.tolist()
    assert rejected == [
        ["patients.csv", 2, "sex", "not_in_choices"],
        ["visits.csv", 1, "type", "unknown_event_type"],
        # T0002 was rejected (sex 9), so its visits have no person.
        ["visits.csv", 3, "person_id", "unknown_person"],
        ["visits.csv", 4, "person_id", "unknown_person"],
        ["visits.csv", 5, "type", "unknown_event_type"],
        ["visits.csv", 7, "person_id", "unknown_person"],
        ["visits.csv", 8, "person_id", "unknown_person"],
        ["visits.csv", 9, "type", "unknown_event_type"],
        ["visits.csv", 11, "person_id", "unknown_person"],
        ["visits.csv", 12, "person_id", "unknown_person"],
    ]
    assert (result.persons.stored, result.events.stored) == (1, 3)
    assert load_events(engine).query("event_id == 'R1'")["source"].tolist() == ["POLICE"]
    assert load_persons(engine)["marital"].tolist() == ["Separated"]

    assert result.report_path is not None
    report = json.loads(result.report_path.read_text("utf-8"))
    assert report["mapping"]["name"] == "trial-cohort"
    assert report["mapping"]["version"] == "1"
    assert report["mapping"]["fingerprint"] == load_mapping(MAPPING).fingerprint()
    assert report["mapping"]["path"] == str(MAPPING)
    events_part = report["mapping"]["tables"][1]
    assert events_part["unmapped"][0] == {"column": "type", "value": "HAIR", "rows": 2}
    assert "Separated" not in result.report_path.read_text("utf-8")


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("name: x\nversion: 1\npersons:\n  colums: {patid: person_id}\n", "persons.colums"),
        ("name: x\nverison: 1\nversion: 1\n", "'verison'"),
        ("name: x\nversion: 1\nevents:\n  values: {type: {U: urine_tset}}\n", "urine_tset"),
        ("name: x\nversion: 1\npersons:\n  columns: {patid: person}\n", "'person' is not a"),
        ("name: x\nversion: 1\npersons:\n  values: {sex: {'9': null}}\n", "sex is required"),
        ("name: x\nversion: 1\nevents:\n  values: {result: {P: postive}}\n", "'postive'"),
        ("name: x\nversion: 1\npersons:\n  values: {marital: {S: Single}}\n", "'Single'"),
        ("name: x\nversion: 1\npersons:\n  values: {household: {no: local}}\n", "quotes"),
        ("name: x\nversion: 1\npersons:\n  dates: {sex: '%d/%m/%Y'}\n", "not a date"),
        (
            "name: x\nversion: 1\npersons:\n  columns: {a: sex, b: sex}\n",
            "'a' and 'b' both map to 'sex'",
        ),
        (
            "name: x\nversion: 1\npersons:\n  columns: {p: program}\n  constants: {program: x}\n",
            "constants.program",
        ),
        ("version: 1\n", "name"),
    ],
)
def test_a_mapping_that_does_not_fit_is_refused_by_name(tmp_path, text, named):
    with pytest.raises(MappingError) as caught:
        load_mapping(_yaml(tmp_path, text))
    assert named in str(caught.value)
    assert str(caught.value).startswith("mapping.yaml: ")


def test_a_typo_names_the_key_and_the_known_ones(tmp_path):
    path = _yaml(tmp_path, "name: x\nversion: 1\nevents:\n  constans: {source: lab}\n")
    with pytest.raises(MappingError, match=r"unknown key 'constans' at events\.constans") as caught:
        load_mapping(path)
    assert "constants" in str(caught.value)


def test_dates_that_do_not_match_the_format_are_rejected_by_validation(engine, tmp_path):
    patients = PATIENTS.copy()
    patients.loc[0, "enrol_date"] = "3 Jan 2022"
    patients.loc[1, "enrol_date"] = "2022-02-17"  # passed on as sent, and ISO 8601 is valid
    folder = _write_foreign(tmp_path / "in", patients, VISITS.iloc[:0])
    result = ingest_dir(engine, folder, mapping=load_mapping(MAPPING))
    assert result.rejections[["row", "column", "code"]].values.tolist() == [
        [1, "program_start", "bad_date"]
    ]
    assert "3 Jan 2022" in str(result.rejections.loc[0, "reason"])
    assert load_persons(engine)["program_start"].tolist() == [pd.Timestamp("2022-02-17")]


def test_the_docs_example_is_the_fixture_mapping():
    assert DOCS_EXAMPLE.read_bytes() == MAPPING.read_bytes()
    mapping = load_mapping(DOCS_EXAMPLE)
    assert (mapping.name, mapping.version) == ("trial-cohort", "1")
    # Comments and layout do not change the fingerprint; content does.
    assert SourceMapping.model_validate(mapping.model_dump()).fingerprint() == mapping.fingerprint()
    other = mapping.model_copy(update={"version": "2"})
    assert other.fingerprint() != mapping.fingerprint()


def test_without_its_mapping_the_trial_folder_is_not_input(tmp_path):
    folder = make_trial_cohort(persons=20).write(tmp_path / "trial")
    with pytest.raises(FileNotFoundError, match="persons.csv"):
        ingest_dir(sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}"), folder)


def test_cli_ingests_the_trial_cohort_with_its_mapping_and_a_rerun_stores_nothing(
    tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from sunflower.cli import app

    cohort = make_trial_cohort(persons=400, seed=3)
    folder = cohort.write(tmp_path / "trial")
    home = tmp_path / "home"
    monkeypatch.setenv("SUNFLOWER_HOME", str(home))
    monkeypatch.delenv("SUNFLOWER_DATABASE_URL", raising=False)
    args = ["ingest", str(folder), "--mapping", str(MAPPING)]

    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "mapping: trial-cohort 1" in first.output

    engine = sa.create_engine(f"sqlite:///{home / 'sunflower.db'}")
    with engine.connect() as conn:
        counts = conn.execute(
            sa.text("SELECT (SELECT count(*) FROM persons), (SELECT count(*) FROM events)")
        ).one()
    assert tuple(counts) == (len(cohort.patients), len(cohort.visits))
    events = load_events(engine)
    assert set(events["type"]) == {"check_in", "urine_test", "counselling", "program_exit"}

    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    reports = sorted((home / "reports").glob("ingest-*.json"))
    rerun = json.loads(reports[-1].read_text("utf-8"))
    assert rerun["persons"]["stored"] == 0 and rerun["events"]["stored"] == 0
    assert rerun["events"]["already"] == len(cohort.visits)
    assert rerun["mapping"]["fingerprint"] == load_mapping(MAPPING).fingerprint()
    engine.dispose()


def test_cli_refuses_a_broken_mapping_before_touching_the_database(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sunflower.cli import app

    monkeypatch.setenv("SUNFLOWER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SUNFLOWER_DATABASE_URL", raising=False)
    bad = _yaml(tmp_path, "name: x\nversion: 1\nevents:\n  colums: {}\n")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path), "--mapping", str(bad)])
    assert result.exit_code == 1
    assert "colums" in result.output
    assert not (tmp_path / "home" / "sunflower.db").exists()


def test_a_format_with_an_offset_is_converted_to_local_time():
    mapping = SourceMapping.model_validate(
        {"name": "z", "version": "1", "events": {"dates": {"ts": "%Y-%m-%d %H:%M%z"}}}
    )
    frame, _ = mapping.apply("events", pd.DataFrame({"ts": ["2024-01-01 00:30+0000", "x", ""]}))
    assert _plain(frame)["ts"] == ["2024-01-01T08:30:00.000000", "x", None]


def test_unreadable_and_ragged_files_are_named_through_a_mapping_too(engine, tmp_path):
    folder = _write_foreign(tmp_path / "in", PATIENTS, VISITS.iloc[:0])
    (folder / "visits.csv").write_bytes(b"")  # empty: one whole-file rejection
    result = ingest_dir(engine, folder, mapping=load_mapping(MAPPING))
    assert result.rejections[["file", "code"]].values.tolist() == [["visits.csv", "empty_file"]]
    assert len(load_persons(engine)) == 2  # the other file is still stored
    text = (folder / "patients.csv").read_text().splitlines()
    text[2] += ",extra"  # the second patient's row has one field too many
    (folder / "patients.csv").write_text("\n".join(text) + "\n")
    (folder / "visits.csv").write_bytes(b"recid,patid\n")
    result = ingest_dir(engine, folder, mapping=load_mapping(MAPPING))
    ragged = result.rejections[result.rejections["code"] == "ragged_row"]
    assert ragged[["file", "row"]].values.tolist() == [["patients.csv", 2]]
