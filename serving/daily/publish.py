"""Publishing a scoring run: one transaction, bulk writes, the old run kept as 'replaced'.

Contract: :func:`publish_run` opens ONE transaction, marks the date's
published run(s) ``replaced``, inserts the new run and all its rows, and
commits. Until the commit no reader sees any of it, and if the process dies
first the database rolls back to the previous state (SQLite's journal,
PostgreSQL's aborted transaction). Rows are written in batches with
``executemany`` on SQLite and ``COPY`` on PostgreSQL; ``progress`` is called
after each batch.

:func:`publish_batches` is the same transaction fed by an iterable of
``(table, rows)`` batches that may be produced while it runs (the daily job
renders each chunk of persons just before writing it, so a district of
millions never holds all its JSON text at once); a failure while producing
them rolls the whole run back like any other. ``seconds`` may be a callable,
read just before the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.contract import local_now
from serving import db
from serving.db import score_runs
from serving.queries import forget_runs

BATCH = 50_000

SCORE_COLUMNS = (
    "outcome",
    "person_id",
    "worker_id",
    "district",
    "town",
    "p",
    "band",
    "rank_caseload",
    "rank_town",
    "rank_district",
    "change",
    "alert_mask",
    "cohort_mask",
    "top_spec",
    "model_version",
    "item",
)


#: Columns written per table (after run_id), in the order of the row tuples.
COLUMNS: dict[str, tuple[str, ...]] = {
    "scores": SCORE_COLUMNS,
    "explanations": ("person_id", "outcome", "body"),
    "feature_rows": ("person_id", "vector"),
    "alerts": ("person_id", "kind", "since", "body"),
    "town_kpis": ("district", "town", "body"),
}
_TABLES = {
    "scores": db.scores,
    "explanations": db.explanations,
    "feature_rows": db.feature_rows,
    "alerts": db.alerts,
    "town_kpis": db.town_kpis,
}


def publish_run(
    engine: Engine,
    *,
    as_of: date,
    started_at: datetime,
    n_persons: int,
    models: dict[str, Any],
    feature_names: list[str],
    scores: Sequence[tuple[Any, ...]],
    explanations: Sequence[tuple[Any, ...]],
    vectors: Sequence[tuple[Any, ...]],
    alerts: Sequence[tuple[Any, ...]],
    kpis: Sequence[tuple[Any, ...]],
    seconds: float,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, list[int]]:
    """Write a run in one transaction; returns (run id, ids of runs it replaced)."""
    return publish_batches(
        engine,
        as_of=as_of,
        started_at=started_at,
        n_persons=n_persons,
        models=models,
        feature_names=feature_names,
        batches=[
            ("scores", scores),
            ("explanations", explanations),
            ("feature_rows", vectors),
            ("alerts", alerts),
            ("town_kpis", kpis),
        ],
        seconds=seconds,
        progress=progress,
    )


def publish_batches(
    engine: Engine,
    *,
    as_of: date,
    started_at: datetime,
    n_persons: int,
    models: dict[str, Any],
    feature_names: list[str],
    batches: Iterable[tuple[str, Sequence[tuple[Any, ...]]]],
    seconds: float | Callable[[], float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, list[int]]:
    """Write a run whose rows come as ``(table, rows)`` batches, in one transaction."""
    say = progress or (lambda _msg: None)
    with engine.begin() as conn:
        replaced = list(
            conn.execute(
                sa.select(score_runs.c.id).where(
                    score_runs.c.as_of == as_of, score_runs.c.status == "published"
                )
            ).scalars()
        )
        if replaced:
            conn.execute(
                score_runs.update().where(score_runs.c.id.in_(replaced)).values(status="replaced")
            )
        run_id = int(
            conn.execute(
                score_runs.insert()
                .values(
                    as_of=as_of,
                    status="published",
                    started_at=started_at,
                    n_persons=n_persons,
                    models=orjson.dumps(models).decode(),
                    feature_names=orjson.dumps(feature_names).decode(),
                    seconds=seconds if not callable(seconds) else None,
                )
                .returning(score_runs.c.id)
            ).scalar_one()
        )
        for name, rows in batches:
            bulk_insert(conn, _TABLES[name], ("run_id", *COLUMNS[name]), rows, run_id, say)
        done: dict[str, Any] = {"finished_at": local_now().replace(microsecond=0)}
        if callable(seconds):
            done["seconds"] = seconds()
        conn.execute(score_runs.update().where(score_runs.c.id == run_id).values(**done))
    forget_runs()
    return run_id, replaced


def bulk_insert(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    run_id: int,
    say: Callable[[str], None],
) -> None:
    """Insert ``(run_id, *row)`` for every row, in batches."""
    cols = ", ".join(columns)
    for lo in range(0, len(rows), BATCH):
        batch = rows[lo : lo + BATCH]
        if conn.dialect.name == "postgresql":
            driver = conn.connection.driver_connection
            with driver.cursor() as cur:  # type: ignore[union-attr]
                with cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row((run_id, *row))
        else:
            # run_id as a literal: the rows are bound as they come, no per-row tuple copy
            marks = ", ".join("?" for _ in columns[1:])
            when = [i for i, v in enumerate(batch[0]) if isinstance(v, datetime)] if batch else []
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.executemany(
                f"INSERT INTO {table.name} ({cols}) VALUES ({int(run_id)}, {marks})",
                [_sqlite_row(row) for row in batch] if when or table.name == "alerts" else batch,
            )
            cursor.close()
        say(f"stored {min(lo + BATCH, len(rows)):,} of {len(rows):,} {table.name} rows")


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Datetimes in the text form SQLAlchemy's SQLite dialect stores and parses."""
    return tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row)
