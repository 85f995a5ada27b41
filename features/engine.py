"""Point-in-time feature engine: pandas (or Parquet) in, pandas out.

Design
------
*The catalog is the source of truth.* ``catalog.yaml`` declares every
feature; :mod:`features.fast` compiles it into array passes and
:mod:`features.sql` compiles the same entries into one DuckDB query (the
declarative reference, and the dialect Spark SQL shares for the
country-scale case, DESIGN §7). Adding a feature is one YAML entry (plus, for
a new *kind*, one branch in each compiler; the cross-check test keeps them
equal).

*The point-in-time join* (Feast's ``get_historical_features``): each entity
row has its own ``as_of``; an event counts when ``recorded_at < as_of`` —
knowledge time, not event time, so a lab result for a sample taken last week
but recorded tomorrow is invisible today — and no correction of it was
recorded before as_of (:mod:`features.events`). Windows then filter on
``ts``. A daily run (one as_of for everyone) and a training panel (many as_of
per person) are the same call.

*Why numpy, not a SQL engine, for the hot path.* The job is one big
join-and-aggregate of every entity row against its person's events, with
~60 distinct aggregates. In DuckDB the per-row hash aggregate with one
filtered aggregate per (filter, window) dominated (72-170 s for one as_of
over 50 M events). Coding the events once (:mod:`features.columnar`: int32
person index, int8 type/result codes, int64 microsecond times, grouped by
person) turns the join into offset arithmetic and the aggregates into one
scatter-add over (row, atom, age bucket) and one scatter-max per (row, atom)
— see :mod:`features.fast`. A 34-feature prototype had measured 7 s / 1.0 GB
in DuckDB, 9 s / 2.2 GB in Polars and 22 s / 6.5 GB in pandas; the full
catalog in numpy is in the same range (figures in docs/features.md).

*State.* :func:`attach` codes persons and events once and keeps them with
the DuckDB connection it is given (the connection is the session handle of
the internal API the tests use); the SQL relations (``per``, ``ev``,
``ent_all``) are created only when the SQL path needs them
(:func:`compute_sql`, derived loss-of-contact labels).

*Output.* One row per entity row, in the input order and with the input
index: ``person_id``, ``as_of``, then the catalog's columns (int32 counts and
days, 0/1 int8 flags and one-hots, float64 sums and trends) — numeric apart
from the two keys.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features import fast
from features.catalog import Catalog, load_catalog
from features.columnar import Events, Persons, load_events, load_persons
from features.config import LabelConfig, load_label_config
from features.contract import LOCAL_TZ
from features.events import attach_events
from features.sql import feature_query

#: Columns of the feature frame that are not features (keys come from the input frame).
HIDDEN = ("row_id", "person_id", "as_of", "_status", "_in_cohort")
Source = pd.DataFrame | str | Path
#: Entity rows per chunk of the SQL reference path (bounds its aggregate state).
CHUNK_ROWS = 1_000_000


@dataclass
class Session:
    """Coded persons/events and the current entity rows of one connection."""

    persons_src: Source
    events_src: Source
    persons: Persons
    events: Events
    ent_person: np.ndarray | None = None  # person_id strings per entity row
    ent_pidx: np.ndarray | None = None
    ent_as: np.ndarray | None = None
    sql_attached: bool = False
    sql_entities: bool = False


_SESSIONS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, Session] = (
    weakref.WeakKeyDictionary()
)


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
    con.execute("SET enable_progress_bar = false")  # no bars in `sunflower train` output
    return con


def register(con: duckdb.DuckDBPyConnection, name: str, source: Source) -> None:
    """Expose a canonical frame, or a Parquet file/glob, as relation ``name``."""
    if isinstance(source, pd.DataFrame):
        con.register(name, source)
    else:
        path = str(source).replace("'", "''")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet('{path}')")


def attach(con: duckdb.DuckDBPyConnection, persons: Source, events: Source) -> Session:
    """Code persons and events once and keep them with ``con`` (see the module docstring)."""
    coded = load_persons(persons)
    return open_session(con, persons, events, coded, load_events(events, coded))


def open_session(
    con: duckdb.DuckDBPyConnection,
    persons_src: Source,
    events_src: Source,
    persons: Persons,
    events: Events,
) -> Session:
    """Keep already coded persons/events with ``con`` (what :func:`attach` does after coding)."""
    found = Session(persons_src, events_src, persons, events)
    _SESSIONS[con] = found
    return found


def session(con: duckdb.DuckDBPyConnection) -> Session:
    found = _SESSIONS.get(con)
    if found is None:
        raise RuntimeError("attach(con, persons, events) first")
    return found


def attach_sql(con: duckdb.DuckDBPyConnection) -> None:
    """Create the SQL relations ``per`` and ``ev`` (and ``ent_all``) for the SQL path."""
    s = session(con)
    if not s.sql_attached:
        register(con, "persons_src", s.persons_src)
        con.execute("CREATE OR REPLACE TEMP TABLE per AS SELECT * FROM persons_src")
        register(con, "events_src", s.events_src)
        attach_events(con, "events_src")
        s.sql_attached = True
    if not s.sql_entities and s.ent_as is not None:
        frame = pd.DataFrame(
            {
                "row_id": np.arange(len(s.ent_as), dtype="int64"),
                "person_id": s.ent_person,
                "as_us": s.ent_as,
            }
        )
        con.register("ent_src", frame)
        con.execute("CREATE OR REPLACE TEMP TABLE ent_all AS SELECT * FROM ent_src")
        con.unregister("ent_src")
        s.sql_entities = True


def as_of_micros(values: pd.Series) -> np.ndarray:
    """as_of values (dates, datetimes or ISO strings) as local-time microseconds."""
    ts = pd.to_datetime(values)
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    if ts.isna().any():
        raise ValueError("entities: as_of is missing in some rows; every row needs a date")
    return ts.astype("datetime64[us]").to_numpy().astype("int64")


def set_entities(con: duckdb.DuckDBPyConnection, entities: pd.DataFrame) -> int:
    """Set the entity rows (person_id, as_of) of ``con``'s session; return their number."""
    missing = {"person_id", "as_of"} - set(entities.columns)
    if missing:
        raise ValueError(f"entities: missing column(s) {sorted(missing)}; need person_id, as_of")
    s = session(con)
    person = entities["person_id"].astype("string").to_numpy(dtype=object)
    as_us = as_of_micros(entities["as_of"])
    pidx = s.persons.index_of(person)
    unknown = np.flatnonzero(pidx < 0)
    if len(unknown):
        raise ValueError(
            f"entities: {len(unknown)} row(s) name a person_id that is not in persons "
            f"(first at position {int(unknown[0])}); load the person first"
        )
    s.ent_person, s.ent_pidx, s.ent_as = person, pidx, as_us
    s.sql_entities = False
    return len(person)


def chunks(n_rows: int, chunk_rows: int = CHUNK_ROWS) -> list[tuple[int, int]]:
    """Row-id ranges [lo, hi) of at most ``chunk_rows`` rows."""
    return [(lo, min(lo + chunk_rows, n_rows)) for lo in range(0, max(n_rows, 1), chunk_rows)]


def use_chunk(con: duckdb.DuckDBPyConnection, lo: int, hi: int) -> None:
    """Point ``ent`` at entity rows [lo, hi) (SQL path)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ent AS SELECT * FROM ent_all "
        f"WHERE row_id >= {int(lo)} AND row_id < {int(hi)}"
    )


def feature_frame(
    persons: Persons,
    events: Events,
    pidx: np.ndarray,
    as_us: np.ndarray,
    catalog: Catalog,
    config: LabelConfig,
    *,
    person_ids: np.ndarray | None = None,
    cohort_only: bool = False,
    pair_budget: int = fast.PAIR_BUDGET,
) -> pd.DataFrame:
    """The numpy engine over entity rows (pidx, as_us): row_id, person_id, as_of, ..."""
    plan = fast.compile_plan(catalog, config)
    atom_e = plan.table[events.tc, events.rc]
    cols = fast.PersonColumns.of(persons, catalog)
    parts: list[dict[str, np.ndarray]] = []
    for sl in fast.row_chunks(events, pidx, pair_budget):
        parts.append(fast.evaluate(plan, events, atom_e, cols, pidx[sl], as_us[sl], cohort_only))
    if not parts:
        parts.append(fast.evaluate(plan, events, atom_e, cols, pidx, as_us, cohort_only))
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ids = person_ids if person_ids is not None else persons.ids.to_numpy()[pidx]
    head = {
        "row_id": np.arange(len(pidx), dtype=np.int64),
        "person_id": ids,
        "as_of": as_us.astype("datetime64[us]"),
    }
    return pd.DataFrame({**head, **data}, copy=False)


def compute(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    config: LabelConfig,
    cohort_only: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Features (or only the cohort columns) for the session's entity rows, in row order."""
    s = session(con)
    if s.ent_pidx is None or s.ent_as is None:
        raise RuntimeError("set_entities(con, entities) first")
    return feature_frame(
        s.persons,
        s.events,
        s.ent_pidx,
        s.ent_as,
        catalog,
        config,
        person_ids=s.ent_person,
        cohort_only=cohort_only,
    )


def compute_sql(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    config: LabelConfig,
    cohort_only: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """The same frame from the SQL compiler (:mod:`features.sql`), the reference engine."""
    attach_sql(con)
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
