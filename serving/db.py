"""The serving layer's tables (scores, explanations, alerts, users, audit …).

Contract: :data:`metadata` declares the tables; the migrations in
``serving/migrations`` create them under their own version table
(``alembic_version_serving``), in the same database as the input tables of
:mod:`features.store`. :func:`migrate` brings both layers to head
(idempotent). Times are naive Asia/Shanghai local time, like the input tables.

A scoring run (``score_runs``) owns its rows in ``scores``, ``explanations``,
``feature_rows``, ``alerts`` and ``town_kpis``. Exactly one run per date is
``published``; a rerun marks the previous one ``replaced`` (kept, so what was
shown earlier can still be looked up by run id). ``audit_log`` is append-only:
triggers refuse UPDATE and DELETE on both SQLite and PostgreSQL.

``monitor_runs`` / ``monitor_metrics`` hold what the model monitor said on each
date for each outcome (``sunflower monitor``, run after every ``score``): the
verdict, evidence and Chinese sentences, and every figure (drift of that day,
CBPE of that day's lists, realised quality of each run closed by then) by
(run date, kind, scope, key, metric). A rerun for the same date and outcome
replaces its rows.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from features.store import alembic_config
from features.store import migrate as migrate_features

VERSION_TABLE = "alembic_version_serving"
MIGRATIONS = Path(__file__).with_name("migrations")

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("worker_id", sa.String(64), nullable=True),
    sa.Column("district", sa.String(100), nullable=True),
    sa.Column("town", sa.String(100), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(100), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=True),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_audit_person", "person_id", "at"),
    sa.Index("ix_audit_at", "at"),
)

score_runs = sa.Table(
    "score_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    sa.Column("n_persons", sa.Integer, nullable=False),
    sa.Column("models", sa.Text, nullable=False),
    sa.Column("feature_names", sa.Text, nullable=False),
    sa.Column("seconds", sa.Float, nullable=True),
    sa.Index("ix_runs_as_of", "as_of", "status"),
)

scores = sa.Table(
    "scores",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.id"), primary_key=True),
    sa.Column("outcome", sa.String(24), primary_key=True),
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("worker_id", sa.String(64), nullable=False),
    sa.Column("district", sa.String(100), nullable=False),
    sa.Column("town", sa.String(100), nullable=False),
    sa.Column("p", sa.Float, nullable=False),
    sa.Column("band", sa.Integer, nullable=False),
    sa.Column("rank_caseload", sa.Integer, nullable=False),
    sa.Column("rank_town", sa.Integer, nullable=False),
    sa.Column("rank_district", sa.Integer, nullable=False),
    sa.Column("change", sa.Float, nullable=True),
    sa.Column("alert_mask", sa.Integer, nullable=False),
    sa.Column("cohort_mask", sa.Integer, nullable=False),
    sa.Column("top_spec", sa.String(64), nullable=True),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("item", sa.Text, nullable=False),
    sa.Index("ix_scores_caseload", "run_id", "outcome", "worker_id", "rank_caseload"),
    sa.Index("ix_scores_town", "run_id", "outcome", "district", "town", "rank_town"),
    sa.Index("ix_scores_district", "run_id", "outcome", "district", "rank_district"),
    sa.Index("ix_scores_person", "person_id", "run_id"),
)

explanations = sa.Table(
    "explanations",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.id"), primary_key=True),
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("outcome", sa.String(24), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)

feature_rows = sa.Table(
    "feature_rows",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.id"), primary_key=True),
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.id"), primary_key=True),
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("since", sa.DateTime, nullable=True),
    sa.Column("body", sa.Text, nullable=False),
)

town_kpis = sa.Table(
    "town_kpis",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.id"), primary_key=True),
    sa.Column("district", sa.String(100), primary_key=True),
    sa.Column("town", sa.String(100), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("plan_item", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=True),
    sa.Column("outcome", sa.String(24), nullable=True),
    sa.Column("agrees_with_score", sa.Boolean, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("run_id", sa.Integer, nullable=True),
    sa.Index("ix_actions_person", "person_id", "at"),
)

#: Model monitoring (issue 16): one row per (date, outcome) the monitor ran, with the
#: verdict, its evidence and sentences; its figures as a long table (the time series).
monitor_runs = sa.Table(
    "monitor_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("outcome", sa.String(24), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("sentences", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Index("ix_monitor_runs_day", "as_of", "outcome"),
)

monitor_metrics = sa.Table(
    "monitor_metrics",
    metadata,
    sa.Column("monitor_id", sa.Integer, sa.ForeignKey("monitor_runs.id"), primary_key=True),
    sa.Column("run_as_of", sa.Date, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("metric", sa.String(100), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
)

#: Scoring runs that failed (the run itself rolled back, so nothing else records them):
#: one row per failure, written by ``sunflower score`` in its own transaction.
score_failures = sa.Table(
    "score_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
)

#: Tables a run owns, children first (the order rows are deleted in).
RUN_TABLES = (scores, explanations, feature_rows, alerts, town_kpis)


def migrate(engine: Engine) -> None:
    """Bring the input tables and the serving tables to head (idempotent)."""
    migrate_features(engine)
    command.upgrade(alembic_config(engine, MIGRATIONS, VERSION_TABLE), "head")


# -- busy databases ---------------------------------------------------------------------------

#: SQLite's words for "another connection holds the lock" (after the busy timeout).
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
#: PostgreSQL SQLSTATEs that mean "busy, try again": lock_timeout, deadlock, serialization
#: failure, statement timeout, too many connections, server shutting down; and class 08
#: (no connection).
_PG_BUSY = frozenset({"55P03", "40P01", "40001", "57014", "53300", "57P01", "57P03"})


def is_busy(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what caused it) says the database is busy, not broken.

    SQLite: the write lock was not free within the busy timeout. PostgreSQL: a lock
    timeout, deadlock, serialization failure, exhausted connections or no connection.
    Either: no connection free in the pool in time.
    Anything else (a missing table, a bad statement) is not busy: it is a bug.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection free in time
            return True
        orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
        for candidate in (exc, orig):
            if candidate is None:
                continue
            if type(candidate).__module__.startswith("sqlite3") and str(candidate).startswith(
                _SQLITE_BUSY
            ):
                return True
            state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if isinstance(state, str) and (state in _PG_BUSY or state.startswith("08")):
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def bound_lock_waits(engine: Engine, seconds: float) -> None:
    """Make every new connection of ``engine`` wait at most ``seconds`` for a lock.

    SQLite: ``PRAGMA busy_timeout`` (overriding the store's 30 s default); PostgreSQL:
    ``SET lock_timeout``. A wait that runs out raises an error :func:`is_busy` knows.
    """
    ms = max(1, round(seconds * 1000))
    statement = (
        f"PRAGMA busy_timeout = {ms}"
        if engine.dialect.name == "sqlite"
        else f"SET lock_timeout = {ms}"
    )

    def on_connect(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute(statement)
        cursor.close()
        if engine.dialect.name != "sqlite":
            dbapi_connection.commit()  # type: ignore[attr-defined]

    sa.event.listen(engine, "connect", on_connect)
