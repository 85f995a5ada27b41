"""Ingest speed: 1 M events (and their persons) from Parquet into SQLite and PostgreSQL.

Prints rows/s for a first load and for a repeated (idempotent) load of the same
files. The data is a quick vectorised generator (valid contract rows), not the
simulator, so this measures validation + storage alone.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import EVENT_RESULTS
from features.ingest import ingest_dir
from features.store import make_engine
from tests import pg

N_PERSONS = 20_000
N_EVENTS = 1_000_000


def make_data(folder: Path, seed: int = 7) -> None:
    """Write persons.parquet and events.parquet with N_PERSONS / N_EVENTS valid rows."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"p-{i:07d}" for i in range(N_PERSONS)])
    start = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, N_PERSONS), "D")
    pd.DataFrame(
        {
            "person_id": ids,
            "sex": rng.choice(["M", "F"], N_PERSONS, p=[0.79, 0.21]),
            "birth_year": rng.integers(1960, 2004, N_PERSONS),
            "district": "示例区",
            "town": rng.choice(["东镇", "西镇", "南镇", "北镇"], N_PERSONS),
            "worker_id": np.char.add("w-", (np.arange(N_PERSONS) // 20).astype(str)),
            "program": "community_rehab",
            "program_start": start.date,
            "program_end": (start + pd.Timedelta(days=1094)).date,
            "primary_drug": rng.choice(["heroin", "methamphetamine"], N_PERSONS),
            "first_use_year": pd.array([None] * N_PERSONS, dtype="Int64"),
            "prior_compulsory_detox": rng.integers(0, 4, N_PERSONS),
            "household": "local",
            "living": "with_family",
            "marital": None,
            "education": None,
        }
    ).to_parquet(folder / "persons.parquet")
    types = rng.choice(["check_in", "urine_test", "home_visit", "counselling"], N_EVENTS)
    results = np.where(
        types == "check_in",
        "attended",
        np.where(types == "urine_test", EVENT_RESULTS["urine_test"][0], None),
    )
    ts = pd.Timestamp("2023-01-01") + pd.to_timedelta(
        rng.integers(0, 3 * 365 * 86400, N_EVENTS), "s"
    )
    pd.DataFrame(
        {
            "event_id": np.char.add("e-", np.arange(N_EVENTS).astype(str)),
            "person_id": ids[rng.integers(0, N_PERSONS, N_EVENTS)],
            "ts": ts,
            "recorded_at": ts + pd.to_timedelta(rng.integers(0, 3 * 86400, N_EVENTS), "s"),
            "type": types,
            "result": results,
            "value": np.nan,
            "source": "worker",
        }
    ).to_parquet(folder / "events.parquet")


def _measure(url: str, folder: Path, label: str) -> None:
    engine = make_engine(url)
    for attempt in ("first load", "same files again"):
        began = time.perf_counter()
        result = ingest_dir(engine, folder)
        seconds = time.perf_counter() - began
        rows = result.persons.received + result.events.received
        print(
            f"{label:10s} {attempt:17s} {rows:>9,} rows in {seconds:6.1f} s = "
            f"{rows / seconds:>9,.0f} rows/s (stored {result.events.stored:,} events, "
            f"already {result.events.already:,}, rejected {len(result.rejections)})"
        )
    engine.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(folder)
        _measure(f"sqlite:///{folder / 'bench.db'}", folder, "SQLite")
        cluster = pg.start_cluster(15999)
        try:
            _measure(cluster.url("bench"), folder, "PostgreSQL")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
