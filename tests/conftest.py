"""Shared fixtures: databases (SQLite file and a throwaway PostgreSQL cluster)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests import pg


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """One throwaway PostgreSQL cluster per test process."""
    if not pg.available():
        pytest.fail("PostgreSQL's initdb/pg_ctl are missing: run .ci/run or install postgresql")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    port = 15400 + int(worker.removeprefix("gw") or 0) + (os.getpid() % 50) * 10
    cluster = pg.start_cluster(port)
    yield cluster
    cluster.stop()


_db_counter = iter(range(1, 1_000_000))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: a SQLite file, or a new database in the PG cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sunflower.db'}"
    cluster: pg.Cluster = request.getfixturevalue("pg_cluster")
    return cluster.url(f"t{os.getpid()}_{next(_db_counter)}")


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on a fresh database (both backends)."""
    from features.store import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local[2] Spark session for the test process (``SPARK_LOCAL_IP=127.0.0.1``).

    Tests that use it are in the ``spark`` xdist group, so one worker starts it once.
    """
    from features.engine.spark import spark_session

    # whole-stage codegen of the ~200-aggregate query costs more than it saves on tiny inputs
    conf = {"spark.sql.codegen.wholeStage": "false"}
    session = spark_session("local[2]", app_name="sunflower-tests", conf=conf)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 simulated people over 18 months, with corrections added, as Parquet."""
    from simulator import simulate

    out = tmp_path_factory.mktemp("spark_district")
    simulate(120, date(2023, 1, 1), date(2024, 6, 30), 11, out, truth=False)
    events = pd.read_parquet(out / "events.parquet")
    rng = np.random.default_rng(18)
    coded = events[events["type"].isin(["check_in", "urine_test", "home_visit"])]
    picked = coded.iloc[rng.choice(len(coded), size=min(60, len(coded)), replace=False)]
    fixes = picked.copy()
    fixes["event_id"] = fixes["event_id"] + "-fix"
    fixes["recorded_at"] = fixes["recorded_at"] + pd.to_timedelta(
        rng.integers(1, 40 * 24, len(fixes)), unit="h"
    )
    flip = {"attended": "missed", "missed": "attended", "negative": "positive"}
    fixes["result"] = fixes["result"].map(lambda r: flip.get(r, r))
    tie = fixes.iloc[:1].copy()  # a second version recorded at the same instant
    tie["event_id"] = tie["event_id"] + "-tie"
    events = pd.concat([events, fixes, tie], ignore_index=True)
    events.to_parquet(out / "events.parquet", index=False)
    return out
