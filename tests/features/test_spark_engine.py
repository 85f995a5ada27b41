"""The Spark backend equals the embedded engine: every column, every row (issue 18 item 1).

On ``local[2]`` (one Spark session for the module, ``SPARK_LOCAL_IP=127.0.0.1``):

* the backend (:class:`features.engine.spark.SparkBackend`) against the array
  engine on a small simulated district with corrections added (later versions of
  some events, one same-instant tie), at midnight and mid-morning as_of dates:
  features with their dtypes and the cohort status of every row, and the
  catalog's alerts and cohort flags (``alert_query`` in the Spark dialect, the one
  set of rules): row, kind, since, days, value and every row's cohort mask;
* the same on the shipped examples (``tests/fixtures/examples``), monthly over
  their whole span, so not-started, ended and exited people are in it;
* the job (:func:`features.engine.spark.run_spark_features_job`: Spark reads the
  Parquet files, builds the entity rows, computes the features with the compiled
  query and the labels with the one label rule per person bucket) against the
  embedded job (``features.jobs.run_features_job``) on a quarterly panel: the same
  rows, feature and label columns, row counts by date and label rates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalog import load_catalog
from features.config import load_label_config
from features.engine import Session, get_historical_features
from features.engine.spark import SparkBackend, read_features, run_spark_features_job
from features.jobs import panel_dates, run_features_job
from models.panel import load_dir

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"


@pytest.fixture(scope="module")
def backend(spark: object) -> Iterator[SparkBackend]:
    be = SparkBackend(spark=spark)  # type: ignore[arg-type]
    yield be
    be.close()


def assert_same(got: object, want: object) -> None:
    g, w = got.features, want.features  # type: ignore[attr-defined]
    assert got.status.astype(str).tolist() == want.status.astype(str).tolist()  # type: ignore[attr-defined]
    assert list(g.columns) == list(w.columns)
    assert len(g) == len(w)
    for col in w.columns:
        assert g[col].dtype == w[col].dtype, col
        np.testing.assert_array_equal(g[col].to_numpy(), w[col].to_numpy(), err_msg=col)
    a, b = got.alerts, want.alerts  # type: ignore[attr-defined]
    assert a is not None and b is not None
    for field in ("row", "kind", "since_us", "days", "value", "cohort_mask"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def both(backend: SparkBackend, persons: pd.DataFrame, events: pd.DataFrame, ent: pd.DataFrame):
    with Session.open(persons, events) as session:
        want = get_historical_features(session, ent, backend="array", alerts=True)
        catalog = load_catalog()
        got = backend.evaluate(
            session,
            session.rows(ent),
            catalog,
            load_label_config(),
            chunk_rows=5_000,
            alerts=catalog.alert_settings,
        )
    return got, want


def test_spark_backend_equals_the_array_engine_on_a_simulated_district(
    backend: SparkBackend, spark_district: Path
) -> None:
    data = load_dir(spark_district)
    ids = data.persons["person_id"].tolist()
    as_ofs = [
        pd.Timestamp("2023-09-01"),
        pd.Timestamp("2024-03-01 07:30"),
        pd.Timestamp("2024-06-01"),
    ]
    ent = pd.DataFrame({"person_id": ids * len(as_ofs), "as_of": np.repeat(as_ofs, len(ids))})
    got, want = both(backend, data.persons, data.events, ent)
    assert_same(got, want)
    assert set(want.status) >= {"active", "not_started"}
    assert len(want.features.columns) > 100
    assert want.alerts is not None and (want.alerts.cohort_mask != 0).any()
    rules = {"overdue_test", "medicine_purchase", "medicine_quantity_30d"}
    assert rules | {"medicine_pharmacies", "medicine_sharp_rise"} <= set(want.alerts.kind)


def test_spark_backend_equals_the_array_engine_on_the_shipped_examples(
    backend: SparkBackend,
) -> None:
    data = load_dir(EXAMPLES)
    dates = panel_dates("2022-12-01", "2026-03-01", "1M")
    ids = data.persons["person_id"].tolist()
    ent = pd.DataFrame({"person_id": ids * len(dates), "as_of": np.repeat(dates, len(ids))})
    got, want = both(backend, data.persons, data.events, ent)
    assert_same(got, want)
    assert {"active", "not_started", "ended"} <= set(want.status)
    assert want.alerts is not None and len(want.alerts.row) > 0


def test_the_spark_job_writes_what_the_embedded_job_writes(
    spark: object, spark_district: Path, tmp_path: Path
) -> None:
    persons, events = spark_district / "persons.parquet", spark_district / "events.parquet"
    dates = panel_dates("2023-06-01", "2024-06-01", "3M")
    run_features_job(persons, events, out=tmp_path / "embedded", dates=dates)
    want = read_features(tmp_path / "embedded" / "features.parquet")
    manifest = run_spark_features_job(
        persons,
        events,
        out=tmp_path / "spark",
        dates=dates,
        spark=spark,  # type: ignore[arg-type]
    )
    got = read_features(tmp_path / "spark" / "features.parquet")
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) > 0
    for col in want.columns:
        if col.startswith("label_"):  # nullable: 1, 0 or unknown
            assert got[col].astype("Int8").equals(want[col].astype("Int8")), col
            continue
        assert got[col].dtype == want[col].dtype, col
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)
    embedded = json.loads((tmp_path / "embedded" / "manifest.json").read_text())
    for key in ("rows", "rows_by_as_of", "label_rates", "features", "catalog_version"):
        assert manifest[key] == embedded[key], key


def test_the_cli_runs_the_spark_job(
    spark: object, spark_district: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sunflower features --engine spark`` (the test's running session is reused)."""
    from typer.testing import CliRunner

    from sunflower.cli import app

    monkeypatch.setenv("SUNFLOWER_HOME", str(tmp_path / "home"))
    args = ["features", "--engine", "spark", "--master", "local[2]", "--as-of", "2024-03-01"]
    args += ["--data", str(spark_district), "--out", str(tmp_path / "out")]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["engine"] == "spark" and manifest["master"].startswith("local")
    run_features_job(
        spark_district / "persons.parquet",
        spark_district / "events.parquet",
        out=tmp_path / "embedded",
        as_of="2024-03-01",
    )
    embedded = json.loads((tmp_path / "embedded" / "manifest.json").read_text())
    assert manifest["rows_by_as_of"] == embedded["rows_by_as_of"]
    assert manifest["label_rates"] == embedded["label_rates"]
