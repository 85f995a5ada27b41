"""Point-in-time feature engine: catalog -> DuckDB SQL, pandas in / pandas out.

Design
------
*Why DuckDB.* The job is one big join-and-aggregate: every entity row
(person, as_of) against that person's events. DuckDB runs it vectorised on all
cores, streams Parquet without loading it into Python, scans pandas frames
in place, spills to disk past its memory limit and needs no server. A
34-feature prototype measured 7 s / 1.0 GB in DuckDB against 9 s / 2.2 GB in
Polars and 22 s / 6.5 GB in pandas for one as_of over 50 M events; DuckDB also
keeps the compiled feature definitions as plain SQL, the dialect Spark SQL
shares for the country-scale case (DESIGN §7).

*The catalog is the source of truth.* :mod:`features.sql` turns each entry of
``catalog.yaml`` into aggregate expressions; adding a feature is one YAML entry.

*The point-in-time join* (Feast's ``get_historical_features``): each entity
row has its own ``as_of``. Events are joined on ``person_id`` and kept only
when ``recorded_at < as_of`` — knowledge time, not event time, so a lab result
for a sample taken last week but recorded tomorrow is invisible today — and
when no correction of them was recorded before as_of (``sup_us >= as_of``,
see :mod:`features.events`). Windows then filter on ``ts``. A daily run (one
as_of for everyone) and a training panel (many as_of per person) are the same
query; the panel is processed in chunks of entity rows so the aggregate state
stays bounded.

*Output.* One row per entity row, in the input order and with the input
index: ``person_id``, ``as_of``, then the catalog's columns (ints, 0/1 int8
flags and one-hots, floats) — numeric apart from the two keys.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.catalog import Catalog, load_catalog
from features.config import LabelConfig, load_label_config
from features.contract import LOCAL_TZ
from features.events import attach_events
from features.sql import feature_query

#: Columns of the feature query that are not features (keys come from the input frame).
HIDDEN = ("row_id", "person_id", "as_of", "_status", "_in_cohort")
Source = pd.DataFrame | str | Path
#: Entity rows per chunk: bounds the aggregate state (~1 kB per row) of a panel.
CHUNK_ROWS = 1_000_000


def connect(
    threads: int | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB connection."""
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def register(con: duckdb.DuckDBPyConnection, name: str, source: Source) -> None:
    """Expose a canonical frame, or a Parquet file/glob, as relation ``name``."""
    if isinstance(source, pd.DataFrame):
        con.register(name, source)
    else:
        path = str(source).replace("'", "''")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet('{path}')")


def attach(con: duckdb.DuckDBPyConnection, persons: Source, events: Source) -> None:
    """Prepare ``per`` (persons) and ``ev`` (coded, correction-aware events)."""
    register(con, "persons_src", persons)
    con.execute("CREATE OR REPLACE TEMP TABLE per AS SELECT * FROM persons_src")
    register(con, "events_src", events)
    attach_events(con, "events_src")


def as_of_micros(values: pd.Series) -> np.ndarray:
    """as_of values (dates, datetimes or ISO strings) as local-time microseconds."""
    ts = pd.to_datetime(values)
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    if ts.isna().any():
        raise ValueError("entities: as_of is missing in some rows; every row needs a date")
    return ts.astype("datetime64[us]").to_numpy().astype("int64")


def set_entities(con: duckdb.DuckDBPyConnection, entities: pd.DataFrame) -> int:
    """Load the entity frame as ``ent_all(row_id, person_id, as_us)``; return its length."""
    missing = {"person_id", "as_of"} - set(entities.columns)
    if missing:
        raise ValueError(f"entities: missing column(s) {sorted(missing)}; need person_id, as_of")
    frame = pd.DataFrame(
        {
            "row_id": np.arange(len(entities), dtype="int64"),
            "person_id": entities["person_id"].astype("string").to_numpy(),
            "as_us": as_of_micros(entities["as_of"]),
        }
    )
    con.register("ent_src", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE ent_all AS SELECT * FROM ent_src")
    con.unregister("ent_src")
    unknown = con.execute(
        "SELECT count(*), min(row_id) FROM ent_all e ANTI JOIN per p USING (person_id)"
    ).fetchone()
    if unknown and unknown[0]:
        raise ValueError(
            f"entities: {unknown[0]} row(s) name a person_id that is not in persons "
            f"(first at position {unknown[1]}); load the person first"
        )
    return len(frame)


def chunks(n_rows: int, chunk_rows: int = CHUNK_ROWS) -> list[tuple[int, int]]:
    """Row-id ranges [lo, hi) of at most ``chunk_rows`` rows."""
    return [(lo, min(lo + chunk_rows, n_rows)) for lo in range(0, max(n_rows, 1), chunk_rows)]


def use_chunk(con: duckdb.DuckDBPyConnection, lo: int, hi: int) -> None:
    """Point ``ent`` at entity rows [lo, hi)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ent AS SELECT * FROM ent_all "
        f"WHERE row_id >= {int(lo)} AND row_id < {int(hi)}"
    )


def compute(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    config: LabelConfig,
    cohort_only: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Run the feature query over ``ent_all`` chunk by chunk; rows in row_id order."""
    sql = feature_query(
        catalog,
        exclude_transferred_out=config.cohort.exclude_transferred_out,
        cohort_only=cohort_only,
    )
    n = con.execute("SELECT count(*) FROM ent_all").fetchone()[0]  # type: ignore[index]
    parts = []
    for lo, hi in chunks(n, chunk_rows):
        use_chunk(con, lo, hi)
        parts.append(con.execute(sql).df())
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _keys(entities: pd.DataFrame) -> pd.DataFrame:
    return entities[["person_id", "as_of"]].copy()


def build_features(
    entities: pd.DataFrame,
    *,
    persons: Source,
    events: Source,
    catalog: Catalog | None = None,
    config: LabelConfig | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Point-in-time features: one row per entity row, same order and index.

    ``entities`` has ``person_id`` and ``as_of`` (one as_of per row). Only events
    with ``recorded_at < as_of`` are used. Columns: person_id, as_of, then
    :meth:`Catalog.features` in order.
    """
    catalog = catalog or load_catalog()
    config = config or load_label_config()
    con = con or connect()
    attach(con, persons, events)
    set_entities(con, entities)
    frame = compute(con, catalog, config).drop(columns=list(HIDDEN))
    frame.index = entities.index
    return pd.concat([_keys(entities), frame], axis=1)


def build_cohort(
    entities: pd.DataFrame, *, persons: Source, events: Source, config: LabelConfig | None = None
) -> pd.DataFrame:
    """Cohort membership at each row's as_of (knowledge time): in_cohort and status.

    status is one of active, not_started, ended (planned end passed), exited,
    custody, lost_contact, transferred_out; ``in_cohort`` is status == active.
    """
    config = config or load_label_config()
    con = connect()
    attach(con, persons, events)
    set_entities(con, entities)
    frame = compute(con, load_catalog(), config, cohort_only=True)
    out = _keys(entities)
    out["in_cohort"] = frame["_in_cohort"].to_numpy(dtype=bool)
    out["status"] = frame["_status"].to_numpy()
    return out
