"""The service database's input tables: persons, events and ingest runs.

Contract: :data:`metadata` declares the tables (the migrations in
``features/migrations`` create them; :func:`migrate` brings any database to
head); :func:`make_engine` opens the database named by settings (SQLite file by
default, PostgreSQL when ``SUNFLOWER_DATABASE_URL`` says so);
:func:`load_persons` and :func:`load_events` read the tables back in the
canonical form of :mod:`features.contract`. Times are stored as naive
Asia/Shanghai local time. Nothing connects at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from features.contract import EVENT_COLUMN_NAMES, PERSON_COLUMN_NAMES

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
    256 MB page cache, so bulk loads do not thrash their indexes.
    """
    if not url.startswith("sqlite"):
        return sa.create_engine(url, future=True, pool_pre_ping=True)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, future=True)
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
