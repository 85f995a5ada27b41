"""Feature jobs: the daily case and a training panel, written as Parquet + manifest.

Contract: :func:`run_features_job` takes persons and events (canonical frames
or Parquet paths), builds the entity rows — everyone on one ``as_of``, or
everyone on each date of ``panel=(start, end, every)`` — keeps the rows in the
cohort at that date (knowledge time), and writes ``out/features.parquet``
(person_id, as_of, the catalog's features, ``label_<outcome>`` for both
outcomes) and ``out/manifest.json``: catalog and label-config versions, a data
fingerprint (row counts, latest recorded_at, an order-independent hash), row
counts by as_of, cohort status counts and label rates. It returns the manifest.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.catalog import Catalog, load_catalog
from features.config import OUTCOMES, LabelConfig, load_label_config
from features.engine import CHUNK_ROWS, Source, attach, chunks, connect, use_chunk
from features.labels import label_query, observed_until_us
from features.sql import DAY_US, feature_query

_EVERY = re.compile(r"^(\d+)([DWMY])$")


def panel_dates(
    start: str | pd.Timestamp, end: str | pd.Timestamp, every: str
) -> list[pd.Timestamp]:
    """Dates from start to end inclusive, every ``<n>D``, ``<n>W``, ``<n>M`` or ``<n>Y``."""
    match = _EVERY.match(every.strip().upper())
    if not match:
        raise ValueError(f"every={every!r}: use a number and a unit D, W, M or Y (e.g. 1M)")
    n, unit = int(match.group(1)), match.group(2)
    step = {
        "D": pd.DateOffset(days=n),
        "W": pd.DateOffset(weeks=n),
        "M": pd.DateOffset(months=n),
        "Y": pd.DateOffset(years=n),
    }[unit]
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if last < first:
        raise ValueError(f"panel end {last.date()} is before start {first.date()}")
    dates, k = [], 0
    while (d := first + step * k) <= last:
        dates.append(d)
        k += 1
    return dates


def _entities(con: duckdb.DuckDBPyConnection, dates: list[pd.Timestamp]) -> int:
    """``ent_all``: every person whose agreement spans each date (cohort is checked later)."""
    micros = ", ".join(str(d.value // 1000) for d in dates)
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE ent_all AS
SELECT row_number() OVER (ORDER BY d.as_us, p.person_id) - 1 AS row_id, p.person_id, d.as_us
FROM per p CROSS JOIN (SELECT unnest([{micros}]) AS as_us) d
WHERE epoch_us(CAST(p.program_start AS TIMESTAMP)) <= d.as_us
  AND d.as_us < epoch_us(CAST(p.program_end AS TIMESTAMP)) + {DAY_US}
""")
    return int(con.execute("SELECT count(*) FROM ent_all").fetchone()[0])  # type: ignore[index]


def _fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    ev = con.execute("""SELECT count(*), max(make_timestamp(rec_us)),
        bit_xor(hash(person_id, type, ts_us, rec_us, result, value)) FROM ev_raw""").fetchone()
    pe = con.execute("SELECT count(*), bit_xor(hash(COLUMNS(*))) FROM per").fetchone()
    assert ev is not None and pe is not None
    return {
        "persons": int(pe[0]),
        "events": int(ev[0]),
        "max_recorded_at": ev[1].isoformat() if ev[1] is not None else None,
        "snapshot_hash": f"{int(ev[2] or 0) ^ int(pe[1] or 0):016x}",
    }


def run_features_job(
    persons: Source,
    events: Source,
    *,
    out: Path,
    as_of: str | pd.Timestamp | None = None,
    panel: tuple[str | pd.Timestamp, str | pd.Timestamp, str] | None = None,
    horizon_days: int | None = None,
    catalog: Catalog | None = None,
    config: LabelConfig | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any]:
    """Write features (+ labels) for one as_of or a panel; return the manifest."""
    if (as_of is None) == (panel is None):
        raise ValueError("give exactly one of as_of=DATE or panel=(START, END, EVERY)")
    started = time.perf_counter()
    catalog, config = catalog or load_catalog(), config or load_label_config()
    horizon = horizon_days or config.horizon_days
    dates = panel_dates(*panel) if panel is not None else [pd.Timestamp(str(as_of)).normalize()]
    con = connect(threads, memory_limit)
    attach(con, persons, events)
    n_candidates = _entities(con, dates)
    observed = observed_until_us(con)
    feature_sql = feature_query(
        catalog, exclude_transferred_out=config.cohort.exclude_transferred_out
    )
    label_sql = {o: label_query(config, o, observed) for o in OUTCOMES if o in config.outcomes}
    out.mkdir(parents=True, exist_ok=True)
    path = out / "features.parquet"
    writer: pq.ParquetWriter | None = None
    status: Counter[str] = Counter()
    per_date: Counter[str] = Counter()
    known: Counter[str] = Counter()
    positive: Counter[str] = Counter()
    for lo, hi in chunks(n_candidates, chunk_rows):
        use_chunk(con, lo, hi)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE lab AS SELECT row_id, person_id, as_us,
            as_us + {horizon * DAY_US} AS end_us FROM ent""")
        table = con.sql(feature_sql).to_arrow_table()
        for name, sql in label_sql.items():
            label = con.sql(sql).to_arrow_table().column("label")
            table = table.append_column(f"label_{name}", label)
        status.update(table.column("_status").to_pylist())
        table = table.filter(table.column("_in_cohort")).drop_columns(
            ["row_id", "_status", "_in_cohort"]
        )
        per_date.update(str(d.date()) for d in table.column("as_of").to_pandas())
        for name in label_sql:
            col = table.column(f"label_{name}")
            known[name] += len(col) - col.null_count
            positive[name] += int(pc.sum(col).as_py() or 0)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    manifest = {
        "job": "features",
        "mode": "as_of" if panel is None else "panel",
        "as_of_dates": [str(d.date()) for d in dates],
        "every": None if panel is None else panel[2],
        "catalog_version": catalog.catalog_version,
        "label_config_version": config.config_version,
        "horizon_days": horizon,
        "data": _fingerprint(con),
        "observed_until": datetime.fromtimestamp(observed / 1e6, tz=None).isoformat()
        if observed
        else None,
        "rows": int(sum(per_date.values())),
        "rows_by_as_of": dict(sorted(per_date.items())),
        "status_counts": dict(sorted(status.items())),
        "label_rates": {
            o: {
                "known": known[o],
                "positive": positive[o],
                "rate": positive[o] / known[o] if known[o] else None,
            }
            for o in label_sql
        },
        "features": [f.name for f in catalog.features()],
        "output": path.name,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    return manifest
