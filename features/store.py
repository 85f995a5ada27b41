"""The service database's input tables: persons, events and ingest runs.

Contract: :data:`metadata` declares the tables (the migrations in
``features/migrations`` create them; :func:`migrate` brings any database to
head); :func:`make_engine` opens the database named by settings (SQLite file by
default, PostgreSQL when ``SUNFLOWER_DATABASE_URL`` says so);
:func:`load_persons` and :func:`load_events` read the tables back in the
canonical form of :mod:`features.contract`. :func:`load_event_columns` reads
the columns a feature job needs (no event_id, no source) in a lean form for
large tables: string columns as pandas categoricals, times as
``datetime64[us]``, read through the DB-API cursor in chunks and coded as they
arrive (no per-row pandas strings; 1.8 M events in ~4 s on SQLite instead of
~13 s through ``read_sql``). Times are stored as naive Asia/Shanghai local
time. Nothing connects at import time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from features.contract import (
    EVENT_CODED_RESULTS,
    EVENT_COLUMN_NAMES,
    EVENT_TYPES,
    PERSON_COLUMN_NAMES,
)

VERSION_TABLE = "alembic_version_features"

metadata = sa.MetaData()

ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("persons_received", sa.Integer, nullable=False, default=0),
    sa.Column("persons_stored", sa.Integer, nullable=False, default=0),
    sa.Column("events_received", sa.Integer, nullable=False, default=0),
    sa.Column("events_stored", sa.Integer, nullable=False, default=0),
    sa.Column("rows_rejected", sa.Integer, nullable=False, default=0),
    sa.Column("report_path", sa.String(500), nullable=True),
)

persons = sa.Table(
    "persons",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("sex", sa.String(1), nullable=False),
    sa.Column("birth_year", sa.Integer, nullable=False),
    sa.Column("district", sa.String(100), nullable=False),
    sa.Column("town", sa.String(100), nullable=False),
    sa.Column("worker_id", sa.String(64), nullable=False),
    sa.Column("program", sa.String(32), nullable=False),
    sa.Column("program_start", sa.Date, nullable=False),
    sa.Column("program_end", sa.Date, nullable=False),
    sa.Column("primary_drug", sa.String(32), nullable=False),
    sa.Column("first_use_year", sa.Integer, nullable=True),
    sa.Column("prior_compulsory_detox", sa.Integer, nullable=True),
    sa.Column("household", sa.String(16), nullable=True),
    sa.Column("living", sa.String(16), nullable=True),
    sa.Column("marital", sa.String(64), nullable=True),
    sa.Column("education", sa.String(64), nullable=True),
    sa.Column("ingest_run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=True),
    sa.Index("ix_persons_worker", "worker_id"),
    sa.Index("ix_persons_town", "district", "town"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("person_id", sa.String(64), sa.ForeignKey("persons.person_id"), nullable=False),
    sa.Column("ts", sa.DateTime, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("result", sa.String(200), nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("source", sa.String(40), nullable=True),
    sa.Column("ingest_run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=True),
    sa.Index("ix_events_person_recorded", "person_id", "recorded_at"),
    # Keyed by event_id alone on SQLite: one b-tree less to maintain on bulk loads.
    sqlite_with_rowid=False,
)

_DATE_COLUMNS = ("program_start", "program_end")
_INT_COLUMNS = ("birth_year", "first_use_year", "prior_compulsory_detox")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created on first use.

    SQLite connections use WAL (readers never block the writer), ``synchronous =
    NORMAL`` (durable at each checkpoint, safe against application crashes) and a
    256 MB page cache, so bulk loads do not thrash their indexes. Error messages and
    SQL logs never show bound values (``hide_parameters``: they are persons' data).
    """
    if not url.startswith("sqlite"):
        return sa.create_engine(url, future=True, pool_pre_ping=True, hide_parameters=True)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, future=True, hide_parameters=True)
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode = WAL",
        "synchronous = NORMAL",
        "cache_size = -262144",
        "temp_store = MEMORY",
        "foreign_keys = ON",
        "busy_timeout = 30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def alembic_config(engine: Engine, location: Path, version_table: str) -> Config:
    """An alembic config for one migration folder, bound to ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("version_table", version_table)
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the input tables to the newest schema (idempotent)."""
    location = Path(__file__).parent / "migrations"
    command.upgrade(alembic_config(engine, location, VERSION_TABLE), "head")


def load_persons(engine: Engine) -> pd.DataFrame:
    """All stored persons, canonical form, sorted by person_id."""
    cols = ", ".join(PERSON_COLUMN_NAMES)
    with engine.connect() as conn:
        frame = pd.read_sql_query(sa.text(f"SELECT {cols} FROM persons ORDER BY person_id"), conn)
    for name in _DATE_COLUMNS:
        frame[name] = pd.to_datetime(frame[name]).astype("datetime64[us]")
    for name in _INT_COLUMNS:
        frame[name] = frame[name].astype("Int64")
    return frame


def load_events(engine: Engine, recorded_before: pd.Timestamp | None = None) -> pd.DataFrame:
    """Stored events (optionally only those recorded before a time), canonical form."""
    cols = ", ".join(EVENT_COLUMN_NAMES)
    query = f"SELECT {cols} FROM events"
    statement = sa.text(query + " ORDER BY person_id, ts, event_id")
    if recorded_before is not None:
        # A typed parameter is formatted exactly as the column is stored (SQLite text).
        statement = sa.text(
            query + " WHERE recorded_at < :before ORDER BY person_id, ts, event_id"
        ).bindparams(
            sa.bindparam("before", pd.Timestamp(recorded_before).to_pydatetime(), type_=sa.DateTime)
        )
    with engine.connect() as conn:
        frame = pd.read_sql_query(statement, conn)
    for name in ("ts", "recorded_at"):
        frame[name] = pd.to_datetime(frame[name]).astype("datetime64[us]")
    frame["value"] = frame["value"].astype("float64")
    return frame


#: Rows fetched from the cursor at a time by :func:`load_event_columns`.
FETCH_ROWS = 200_000
#: Stored text of a datetime on SQLite (SQLAlchemy's format), and its width.
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
_PG_TIME = "YYYY-MM-DD HH24:MI:SS.US"


def load_event_columns(engine: Engine, recorded_before: pd.Timestamp | None = None) -> pd.DataFrame:
    """person_id, ts, recorded_at, type, result, value of the stored events, lean form.

    The same rows and values as :func:`load_events` (optionally only those
    recorded before a time), in no particular order: ``person_id``, ``type``
    and ``result`` as pandas categoricals (missing result: NaN), ``ts`` and
    ``recorded_at`` as ``datetime64[us]``, ``value`` as float64. For jobs over
    many events (the feature engine codes categoricals per category, not per
    row).
    """
    where, params = "", ()  # type: tuple[str, tuple[Any, ...]]
    postgres = engine.dialect.name == "postgresql"
    ts_sql, rec_sql = (
        (f"to_char(ts, '{_PG_TIME}')", f"to_char(recorded_at, '{_PG_TIME}')")
        if postgres
        else ("ts", "recorded_at")
    )
    if recorded_before is not None:
        before = pd.Timestamp(recorded_before).to_pydatetime()
        where = " WHERE recorded_at < " + ("%s" if postgres else "?")
        params = (before if postgres else before.strftime(_SQLITE_TIME),)
    # recorded_at is usually ts: NULL then (no string made), filled with ts below; on
    # SQLite known types and results come as small ints (Python's cached ones), not strings
    type_sql, result_sql = ("type", "result") if postgres else (_coded("type"), _coded("result"))
    sql = (
        f"SELECT person_id, {ts_sql}, CASE WHEN recorded_at = ts THEN NULL ELSE {rec_sql} END, "
        f"{type_sql}, {result_sql}, value FROM events{where}"
    )
    coders = [_Coder(), _Coder(_CODED["type"]), _Coder(_CODED["result"])]
    parts: list[tuple[np.ndarray, ...]] = []
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        for rows in _fetch(driver, sql, params, postgres):
            person, ts, rec, kind, result, value = zip(*rows, strict=True)
            ts_us = _micros(ts)
            rec_us = ts_us.copy()
            later = [i for i, v in enumerate(rec) if v is not None]
            if later:
                rec_us[later] = _micros([rec[i] for i in later])
            parts.append(
                (
                    coders[0].codes(person),
                    ts_us,
                    rec_us,
                    coders[1].codes(kind),
                    coders[2].codes(result),
                    np.array(value, dtype=np.float64),
                )
            )
    columns = [np.concatenate([p[i] for p in parts]) if parts else None for i in range(6)]
    empty = np.empty(0, np.int64)

    def times(a: np.ndarray | None) -> np.ndarray:
        return (empty if a is None else a).view("datetime64[us]")

    return pd.DataFrame(
        {
            "person_id": coders[0].categorical(columns[0]),
            "ts": times(columns[1]),
            "recorded_at": times(columns[2]),
            "type": coders[1].categorical(columns[3]),
            "result": coders[2].categorical(columns[4]),
            "value": np.empty(0) if columns[5] is None else columns[5],
        },
        copy=False,
    )


def _fetch(
    driver: Any, sql: str, params: tuple[Any, ...], postgres: bool
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows in lists of ``FETCH_ROWS`` (a server-side cursor on PostgreSQL)."""
    cursor = driver.cursor(name="sunflower_events") if postgres else driver.cursor()
    try:
        if postgres:
            cursor.itersize = FETCH_ROWS
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield rows
    finally:
        cursor.close()


#: Values the SQLite read sends as ints (1-based position here); anything else as text.
_CODED: dict[str, tuple[str, ...]] = {
    "type": EVENT_TYPES,
    "result": tuple(sorted({r for rs in EVENT_CODED_RESULTS.values() for r in rs})),
}


def _coded(column: str) -> str:
    whens = " ".join(
        f"WHEN '{v.replace(chr(39), chr(39) * 2)}' THEN {i}"
        for i, v in enumerate(_CODED[column], 1)
    )
    return f"CASE {column} {whens} ELSE {column} END"


class _Coder:
    """Codes a column's values chunk by chunk against one growing category list.

    ``names``: ints among the values stand for ``names[value - 1]``.
    """

    def __init__(self, names: tuple[str, ...] = ()) -> None:
        self.index: dict[object, int] = {}
        self.names = names

    def codes(self, values: Sequence[object]) -> np.ndarray:
        local, uniques = pd.factorize(np.array(values, dtype=object))
        names = self.names
        to_global = np.array(
            [
                self.index.setdefault(
                    names[v - 1] if isinstance(v, int) and names else v, len(self.index)
                )
                for v in uniques
            ]
            + [-1]
        )
        return to_global[local].astype(np.int32)  # factorize's -1 (None) -> last: -1

    def categorical(self, codes: np.ndarray | None) -> pd.Categorical:
        categories = pd.Index(list(self.index), dtype=object)
        return pd.Categorical.from_codes(
            np.empty(0, np.int32) if codes is None else codes, categories=categories
        )


def _micros(values: Sequence[str]) -> np.ndarray:
    """Stored datetime texts as int64 microseconds.

    Texts of one width (SQLite's stored form, PostgreSQL's ``to_char``) are
    parsed by numpy's ISO parser from one joined buffer; anything else by pandas.
    """
    n = len(values)
    try:
        joined = "".join(values)
    except TypeError:  # not all texts
        joined = ""
    if joined and joined.isascii():
        width = len(values[0])
        if bool((np.fromiter(map(len, values), np.int64, n) == width).all()):
            try:
                parsed = np.frombuffer(joined.encode("ascii"), f"S{width}")
                return parsed.astype("datetime64[us]").view(np.int64)
            except ValueError:
                pass  # not ISO text: pandas says what is wrong, or copes
    stamps = pd.to_datetime(pd.Series(list(values), dtype=object), format="ISO8601")
    stamps = stamps.astype("datetime64[us]")
    return stamps.to_numpy().view(np.int64)
