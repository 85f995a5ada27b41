"""The malformed-input corpus (tests/fixtures/malformed) through `sunflower ingest`.

Each kind is answered by name (file, row, column, code), stores the good rows of
its files, exits as documented (0 all stored, 3 some rejected) and stores nothing
bad. The figures of the last run go to ``CORPUS_LOG`` when that is set.
"""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa

from tests.fixtures.malformed import FILE_KINDS, HUGE, FileKind, files, huge_expect


def _ingest(kind: FileKind, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sunflower.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("SUNFLOWER_HOME", str(home))
    monkeypatch.delenv("SUNFLOWER_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["ingest", str(files(kind, tmp_path / kind.name))])
    (path,) = (home / "reports").glob("ingest-*.json")
    report = json.loads(path.read_text("utf-8"))
    engine = sa.create_engine(f"sqlite:///{home / 'sunflower.db'}")
    with engine.connect() as conn:
        stored = (
            set(conn.execute(sa.text("SELECT person_id FROM persons")).scalars()),
            set(conn.execute(sa.text("SELECT event_id FROM events")).scalars()),
        )
    engine.dispose()
    return result, report, stored


@pytest.mark.parametrize("kind", FILE_KINDS, ids=lambda k: k.name)
def test_each_malformed_kind_is_answered_by_name(kind, tmp_path, monkeypatch):
    result, report, (persons, events) = _ingest(kind, tmp_path, monkeypatch)
    assert "Traceback" not in result.output
    assert result.exit_code == kind.exit_code, result.output
    lines = {(r["file"], r["row"], r["column"], r["code"]) for r in report["rejections"]}
    assert lines == kind.expect
    assert (report["persons"]["stored"], report["events"]["stored"]) == kind.stored
    assert persons <= {"p-1"} and events <= {"e-1"}  # nothing bad is stored
    if kind.name == "extra_unknown_column":  # accepted, but named: read, not stored
        assert report["ignored_columns"] == {"persons.csv": ["nickname"]}
        assert "columns not in the contract, not stored: nickname" in result.output
    log = os.environ.get("CORPUS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            codes = sorted({c for *_, c in kind.expect}) or ["accepted"]
            f.write(
                json.dumps({"kind": kind.name, "exit": result.exit_code, "codes": codes}) + "\n"
            )


@pytest.mark.slow
def test_a_fifty_megabyte_file_is_answered_row_by_row(tmp_path, monkeypatch):
    result, report, (persons, events) = _ingest(HUGE, tmp_path, monkeypatch)
    assert (tmp_path / HUGE.name / "events.csv").stat().st_size > 50_000_000
    n, code = huge_expect()
    assert result.exit_code == 3
    assert report["events"]["rejected"] == n
    assert {r["code"] for r in report["rejections"]} == {code}
    assert (persons, events) == ({"p-1"}, {"e-1"})
