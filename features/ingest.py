"""Ingestion: input tables in, validated rows stored, every rejection reported.

Contract: :func:`ingest_frames` (and :func:`ingest_dir` for ``DIR/persons.*``
and ``DIR/events.*``, or a source's own files and codes through a
:mod:`features.mapping`) validates with :mod:`features.validate`, then stores the
good rows in ONE transaction: either every good row of the load is stored, or
— on any error or interruption — nothing is, and the store is as it was.

Idempotent: a person or event whose id is already stored with the same values
is counted as ``already`` and not written again; the same id with *different*
values is rejected (code ``conflicts_with_stored``): stored history is never
silently rewritten. Events may refer to persons of the same load or already
stored. Every load gets an ``ingest_runs`` row, and each stored row carries its
run id.

Bulk path: rows are staged in a temporary table (``executemany`` on SQLite,
``COPY`` on PostgreSQL), compared with what is stored in SQL, then inserted with
one ``INSERT … SELECT``.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.contract import EVENT_COLUMN_NAMES, PERSON_COLUMN_NAMES, local_now
from features.mapping import MappingReport, SourceMapping, apply_mapping
from features.store import events, ingest_runs, migrate, persons
from features.validate import (
    RAGGED_COLUMN,
    REJECTION_COLUMNS,
    Validated,
    find_input,
    read_input,
    validate_events,
    validate_persons,
)

Progress = Callable[[str], None]


@dataclass
class TableCounts:
    """What happened to one input table."""

    received: int = 0
    stored: int = 0
    already: int = 0
    rejected: int = 0
    duplicates_dropped: int = 0


@dataclass
class IngestResult:
    """The outcome of one load: counts, rejections, the report file."""

    run_id: int | None
    persons: TableCounts
    events: TableCounts
    rejections: pd.DataFrame
    seconds: float
    report_path: Path | None = None
    files: list[str] = field(default_factory=list)
    #: The source mapping applied before validation (``ingest DIR --mapping FILE``).
    mapping: MappingReport | None = None
    #: Columns of each file that the contract does not have: read, not stored.
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing was rejected."""
        return self.rejections.empty

    def summary(self) -> dict[str, object]:
        """The machine-readable summary (also the head of the report file)."""
        mapping = {"mapping": self.mapping.as_dict()} if self.mapping is not None else {}
        return {
            "run_id": self.run_id,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "persons": vars(self.persons),
            "events": vars(self.events),
            "rejections_by_code": self.rejections["code"].value_counts().to_dict()
            if not self.rejections.empty
            else {},
            "ignored_columns": self.ignored_columns,
            **mapping,
        }


def _ignored(*tables: tuple[str, pd.DataFrame | None, tuple[str, ...]]) -> dict[str, list[str]]:
    """Per file, the columns that are not in the contract (reported, never stored)."""
    out = {}
    for name, raw, known in tables:
        if raw is not None:
            extra = [str(c) for c in raw.columns if c not in known and c != RAGGED_COLUMN]
            if extra:
                out[name] = extra
    return out


def ingest_dir(
    engine: Engine,
    directory: Path,
    reports_dir: Path | None = None,
    progress: Progress | None = None,
    mapping: SourceMapping | None = None,
    mapping_path: Path | None = None,
) -> IngestResult:
    """Load ``DIR/persons.(parquet|csv)`` and ``DIR/events.(parquet|csv)``.

    With a ``mapping`` (:mod:`features.mapping`) the files are the mapping's and
    their raw frames are mapped to the contract before validation.
    """
    find = mapping.find_input if mapping is not None else find_input
    person_file = find(directory, "persons")
    event_file = find(directory, "events")
    if person_file is None and event_file is None:
        stems = [(mapping.table(t).file if mapping else None) or t for t in ("persons", "events")]
        raise FileNotFoundError(
            f"{directory}: no {stems[0]}.csv/.parquet or {stems[1]}.csv/.parquet to ingest"
        )
    persons_raw = read_input(person_file) if person_file else None
    events_raw = read_input(event_file) if event_file else None
    persons_name = person_file.name if person_file else "persons"
    events_name = event_file.name if event_file else "events"
    report = None
    if mapping is not None:
        persons_raw, events_raw, report = apply_mapping(
            mapping, persons_raw, events_raw, persons_name, events_name, mapping_path
        )
    return ingest_frames(
        engine,
        persons_raw=persons_raw,
        events_raw=events_raw,
        persons_file=persons_name,
        events_file=events_name,
        source=str(directory),
        reports_dir=reports_dir,
        progress=progress,
        mapping=report,
    )


def ingest_frames(
    engine: Engine,
    persons_raw: pd.DataFrame | None = None,
    events_raw: pd.DataFrame | None = None,
    persons_file: str = "persons",
    events_file: str = "events",
    source: str = "frames",
    reports_dir: Path | None = None,
    progress: Progress | None = None,
    mapping: MappingReport | None = None,
) -> IngestResult:
    """Validate and store raw input frames in one transaction; see module docs."""
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    migrate(engine)
    say("validating persons")
    vp = validate_persons(persons_raw, persons_file) if persons_raw is not None else None
    parts: list[pd.DataFrame] = [vp.rejections] if vp is not None else []
    p_counts = _counts(persons_raw, vp)
    e_counts = TableCounts(received=0 if events_raw is None else len(events_raw))
    with engine.begin() as conn:
        run_id = _open_run(conn, source)
        if vp is not None:
            say(f"storing {len(vp.good):,} persons")
            stored, already, clash = _store(conn, persons, vp.good, "person_id", run_id)
            p_counts.stored, p_counts.already = stored, already
            parts.append(_conflicts(persons_file, "person_id", vp.rows[clash]))
        if events_raw is not None:
            say("validating events")
            known = pd.Index(conn.execute(sa.select(persons.c.person_id)).scalars().all())
            ve = validate_events(events_raw, known, events_file)
            parts.append(ve.rejections)
            e_counts = _counts(events_raw, ve)
            say(f"storing {len(ve.good):,} events")
            stored, already, clash = _store(conn, events, ve.good, "event_id", run_id)
            e_counts.stored, e_counts.already = stored, already
            parts.append(_conflicts(events_file, "event_id", ve.rows[clash]))
        rejections = _concat(parts)
        p_counts.rejected = _rejected_rows(rejections, persons_file, p_counts.received)
        e_counts.rejected = _rejected_rows(rejections, events_file, e_counts.received)
        _close_run(conn, run_id, p_counts, e_counts)
    files = [
        f for f, raw in ((persons_file, persons_raw), (events_file, events_raw)) if raw is not None
    ]
    result = IngestResult(
        run_id,
        p_counts,
        e_counts,
        rejections,
        time.perf_counter() - started,
        files=files,
        mapping=mapping,
        ignored_columns=_ignored(
            (persons_file, persons_raw, PERSON_COLUMN_NAMES),
            (events_file, events_raw, EVENT_COLUMN_NAMES),
        ),
    )
    if reports_dir is not None:
        result.report_path = write_report(result, reports_dir)
        with engine.begin() as conn:
            conn.execute(
                ingest_runs.update()
                .where(ingest_runs.c.id == run_id)
                .values(report_path=str(result.report_path))
            )
    return result


def write_report(result: IngestResult, reports_dir: Path) -> Path:
    """Write ``ingest-<run>.json``: the summary and every rejection line."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"ingest-{result.run_id:06d}.json"
    body = dict(result.summary())
    body["rejections"] = result.rejections.to_dict(orient="records")
    path.write_text(json.dumps(body, ensure_ascii=False, indent=1, default=int), "utf-8")
    return path


def _counts(raw: pd.DataFrame | None, validated: Validated | None) -> TableCounts:
    if raw is None or validated is None:
        return TableCounts()
    return TableCounts(received=len(raw), duplicates_dropped=validated.duplicates_dropped)


def _rejected_rows(rejections: pd.DataFrame, file: str, received: int) -> int:
    mine = rejections[rejections["file"] == file]
    if (mine["row"] == 0).any():
        return received
    return int(mine["row"].nunique())


def _conflicts(file: str, key: str, rows: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": file,
            "row": rows.astype("int64"),
            "column": key,
            "code": "conflicts_with_stored",
            "reason": f"{key} is already stored with different values; "
            "send a correction as a new event instead",
        },
        columns=list(REJECTION_COLUMNS),
    )


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "row" else str) for c in REJECTION_COLUMNS}
        )
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["file", "row", "column"], kind="stable").reset_index(drop=True)


def _open_run(conn: Connection, source: str) -> int:
    row = conn.execute(
        ingest_runs.insert()
        .values(
            started_at=local_now().replace(microsecond=0),
            source=source[:500],
            persons_received=0,
            persons_stored=0,
            events_received=0,
            events_stored=0,
            rows_rejected=0,
        )
        .returning(ingest_runs.c.id)
    ).scalar_one()
    return int(row)


def _close_run(conn: Connection, run_id: int, p: TableCounts, e: TableCounts) -> None:
    conn.execute(
        ingest_runs.update()
        .where(ingest_runs.c.id == run_id)
        .values(
            finished_at=local_now().replace(microsecond=0),
            persons_received=p.received,
            persons_stored=p.stored,
            events_received=e.received,
            events_stored=e.stored,
            rows_rejected=p.rejected + e.rejected,
        )
    )


def _store(
    conn: Connection, table: sa.Table, good: pd.DataFrame, key: str, run_id: int
) -> tuple[int, int, np.ndarray]:
    """Stage ``good`` and insert what is new; return (stored, already, conflict positions)."""
    if good.empty:
        return 0, 0, np.zeros(0, dtype=np.int64)
    names = list(PERSON_COLUMN_NAMES if table is persons else EVENT_COLUMN_NAMES)
    stage = sa.Table(
        f"stage_{table.name}",
        sa.MetaData(),
        *[sa.Column(n, table.c[n].type) for n in names],
        sa.Column("_pos", sa.Integer, primary_key=True),
        prefixes=["TEMPORARY"],
    )
    stage.create(conn)
    try:
        _bulk_load(conn, stage, good, names)
        joined = stage.join(table, table.c[key] == stage.c[key])
        differs = sa.or_(*[table.c[n].is_distinct_from(stage.c[n]) for n in names])
        clash = np.asarray(
            conn.execute(sa.select(stage.c._pos).select_from(joined).where(differs))
            .scalars()
            .all(),
            dtype=np.int64,
        )
        already = conn.execute(
            sa.select(sa.func.count()).select_from(joined).where(sa.not_(differs))
        ).scalar_one()
        new = (
            sa.select(*[stage.c[n] for n in names], sa.literal(run_id))
            .where(~sa.exists().where(table.c[key] == stage.c[key]))
            .order_by(stage.c[key])  # key order: the primary-key index is appended to
        )
        conn.execute(table.insert().from_select([*names, "ingest_run_id"], new))
    finally:
        stage.drop(conn)
    # Staged keys are unique (validation), so every staged row is new, already or a clash.
    stored = len(good) - int(already) - len(clash)
    return stored, int(already), np.sort(clash)


def _bulk_load(conn: Connection, stage: sa.Table, good: pd.DataFrame, names: list[str]) -> None:
    """Fill the staging table: COPY on PostgreSQL, executemany elsewhere."""
    frame = good[names].copy()
    frame["_pos"] = np.arange(len(frame))
    if conn.dialect.name == "postgresql":
        buffer = io.StringIO()
        _for_copy(frame).to_csv(buffer, index=False, header=False, na_rep="")
        driver = conn.connection.driver_connection
        cols = ", ".join(f'"{c}"' for c in frame.columns)
        with driver.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f"COPY {stage.name} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
        return
    marks = ", ".join("?" for _ in frame.columns)
    cols = ", ".join(frame.columns)
    conn.exec_driver_sql(f"INSERT INTO {stage.name} ({cols}) VALUES ({marks})", _as_rows(frame))


def _for_copy(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name].dtype):
            out[name] = out[name].dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    return out


def _as_rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    """Python rows for sqlite3, times formatted as SQLAlchemy stores them."""
    columns: list[list[object]] = []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            is_date = name in ("program_start", "program_end")
            text = series.dt.strftime("%Y-%m-%d" if is_date else "%Y-%m-%d %H:%M:%S.%f")
            columns.append(text.astype(object).where(series.notna(), None).tolist())
        else:
            columns.append(series.astype(object).where(series.notna(), None).tolist())
    return list(zip(*columns, strict=True))
