"""Feature jobs: the daily case and a training panel, written as Parquet + manifest.

Contract: :func:`run_features_job` takes persons and events (canonical frames
or Parquet paths), builds the entity rows — everyone on one ``as_of``, or
everyone on each date of ``panel=(start, end, every)`` — keeps the rows in the
cohort at that date (knowledge time), and writes ``out/features.parquet``
(person_id, as_of, the catalog's features, ``label_<outcome>`` for both
outcomes) and ``out/manifest.json``: catalog and label-config versions, a data
fingerprint (row counts, latest recorded_at, an order-independent hash), row
counts by as_of, cohort status counts and label rates. It returns the manifest.

Pipeline: persons and events are read and coded once into a
:class:`features.engine.Session` (:mod:`features.engine.records`); entity rows
are built in numpy; the array engine (:mod:`features.engine.array_backend`)
computes features and cohort, and :func:`features.labels.chunk_labels` both
labels, chunk by chunk (each chunk bounded by its number of (row, event)
pairs); only cohort rows are written. The data fingerprint hashes the coded events (person,
type and result codes, times, value), so it is stable across input formats.
An outcome with the derived loss-of-contact rule takes its outcome times from
the SQL label query on the session's DuckDB connection.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.catalog import Catalog, load_catalog
from features.config import OUTCOMES, LabelConfig, config_record, load_label_config
from features.engine import CHUNK_ROWS, STATUS_NAMES, Session, Source
from features.engine import array_backend as fast
from features.engine.codes import DAY_US
from features.engine.records import (
    Events,
    Persons,
    code_events,
    code_persons,
    event_digest,
    job_memory,
    lookup_codes,
    person_digest_hashes,
)
from features.labels import chunk_labels, derived_times

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


def entity_rows(
    persons: Persons, cols: fast.PersonColumns, dates: list[pd.Timestamp]
) -> tuple[np.ndarray, np.ndarray]:
    """(pidx, as_us) of every person whose agreement spans each date, by date then id."""
    order = np.asarray(pc.sort_indices(pa.array(persons.ids.to_numpy(), pa.string())))
    start, end = cols.start_us[order], cols.end_us[order] + DAY_US
    pidx, as_us = [], []
    for d in dates:
        us = d.value // 1000
        keep = order[(start <= us) & (us < end)]
        pidx.append(keep)
        as_us.append(np.full(len(keep), us, np.int64))
    if not pidx:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pidx).astype(np.int64), np.concatenate(as_us)


def _xor(values: np.ndarray) -> int:
    return int(np.bitwise_xor.reduce(values)) if len(values) else 0


def person_rows_digest(persons: Persons) -> int:
    """XOR of the person rows' hashes (the person part of the snapshot hash)."""
    return _xor(pd.util.hash_pandas_object(persons.frame, index=False).to_numpy())


def fingerprint(persons: Persons, events: Events, person_rows: int | None = None) -> dict[str, Any]:
    """Counts, latest recorded_at and an order-independent hash of the coded data.

    The event part is :attr:`Events.digest` (folded in while the events were
    coded, ``code_events(digest=True)``), else computed here; ``person_rows``
    is :func:`person_rows_digest` when already computed.
    """
    if person_rows is None:
        person_rows = person_rows_digest(persons)
    acc = events.digest
    if acc is None:
        acc, person_hash, step = 0, person_digest_hashes(persons), 4_000_000
        for lo in range(0, len(events), step):  # chunked: bounded temporaries
            sl = slice(lo, lo + step)
            acc ^= event_digest(
                person_hash,
                events.pidx[sl],
                events.tc[sl],
                events.rc[sl],
                events.ts[sl],
                events.rec[sl],
                events.value[sl],
            )
    max_rec = events.max_rec
    return {
        "persons": len(persons),
        "events": int(events.n_read),
        "max_recorded_at": (
            pd.Timestamp(max_rec, unit="us").isoformat() if max_rec is not None else None
        ),
        "snapshot_hash": f"{acc ^ person_rows:016x}",
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
    entities: pd.DataFrame | None = None,
    dates: list[pd.Timestamp] | None = None,
) -> dict[str, Any]:
    """Write features (+ labels) for one as_of, a panel, given dates or entity rows.

    Returns the manifest. ``dates`` is a panel given as its list of as_of dates.

    ``entities`` (person_id, as_of) are rows of persons in ``persons``, e.g.
    each person on their own programme days; cohort rules still apply.

    ``threads`` and ``memory_limit`` apply to the DuckDB connection of the SQL
    fallback (derived labels); ``chunk_rows`` caps the entity rows per chunk.
    Runs inside :func:`features.engine.records.job_memory` (freed memory reused, no huge pages).
    """
    if sum(x is not None for x in (as_of, panel, entities, dates)) != 1:
        raise ValueError(
            "give exactly one of as_of=DATE, panel=(START, END, EVERY), dates=[...] "
            "or entities=FRAME"
        )
    with job_memory():
        return _run(
            persons, events, out, as_of, panel, horizon_days, catalog, config,
            threads, memory_limit, chunk_rows, entities, dates,
        )  # fmt: skip


def _run(
    persons: Source,
    events: Source,
    out: Path,
    as_of: str | pd.Timestamp | None,
    panel: tuple[str | pd.Timestamp, str | pd.Timestamp, str] | None,
    horizon_days: int | None,
    catalog: Catalog | None,
    config: LabelConfig | None,
    threads: int | None,
    memory_limit: str | None,
    chunk_rows: int,
    entities: pd.DataFrame | None = None,
    given_dates: list[pd.Timestamp] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    catalog, config = catalog or load_catalog(), config or load_label_config()
    horizon = horizon_days or config.horizon_days
    if panel is not None:
        dates = panel_dates(*panel)
    elif as_of is not None:
        dates = [pd.Timestamp(str(as_of)).normalize()]
    else:
        dates = sorted(pd.Timestamp(d).normalize() for d in (given_dates or []))
    stages: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[name] = stages.get(name, 0.0) + round(now - mark, 2)
        mark = now

    coded_persons = code_persons(persons)
    # one helper thread: the person-row hash while events are read, then the writes
    helper = ThreadPoolExecutor(1)
    person_rows = helper.submit(person_rows_digest, coded_persons)
    coded_events = code_events(events, coded_persons, digest=True)
    lap("read_and_code")
    plan = fast.compile_plan(catalog, config)
    atom_e = lookup_codes(plan.table, coded_events.tc, coded_events.rc)
    cols = fast.PersonColumns.of(coded_persons, catalog)
    session = Session(
        persons, events, coded_persons, coded_events, threads=threads, memory_limit=memory_limit
    )
    if entities is not None:
        given = session.rows(entities)
        ent_pidx, ent_as = given.pidx, given.as_us
    else:
        ent_pidx, ent_as = entity_rows(coded_persons, cols, dates)
    observed = session.observed_until_us
    outcomes = [o for o in OUTCOMES if o in config.outcomes]
    derived = [o for o in outcomes if config.outcomes[o].derived.enabled]
    ids = coded_persons.ids.to_numpy()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "features.parquet"
    writer: pq.ParquetWriter | None = None
    pending: Future[None] | None = None
    status: Counter[str] = Counter()
    per_date: Counter[str] = Counter()
    known: Counter[str] = Counter()
    positive: Counter[str] = Counter()
    lap("entities")
    for sl in fast.row_slices(coded_events, ent_pidx, chunk_rows):
        p, a = ent_pidx[sl], ent_as[sl]
        data, codes, _ = fast.evaluate_chunk(plan, coded_events, atom_e, cols, p, a)
        lap("features")
        times: dict[str, np.ndarray] = {}
        if derived:
            rows = session.person_rows(p, a)
            times = {o: derived_times(session, rows, config, o, horizon) for o in derived}
        labels = chunk_labels(
            plan, coded_events, atom_e, cols, p, a, outcomes, horizon, observed, times
        )
        lap("labels")
        names, counts = np.unique(STATUS_NAMES[codes].astype(str), return_counts=True)
        status.update(dict(zip(names.tolist(), counts.tolist(), strict=True)))
        keep = codes == 0
        arrays: dict[str, pa.Array] = {
            "person_id": pa.array(ids[p[keep]], pa.string()),
            "as_of": pa.array(a[keep].astype("datetime64[us]")),
        }
        arrays.update({k: pa.array(v[keep]) for k, v in data.items()})
        for o in outcomes:
            lab = labels[o][keep]
            unknown = np.isnan(lab)
            arrays[f"label_{o}"] = pa.array(np.where(unknown, 0, lab).astype(np.int8), mask=unknown)
            known[o] += int((~unknown).sum())
            positive[o] += int((lab == 1).sum())
        days, n_day = np.unique(a[keep] // DAY_US, return_counts=True)
        for day, c in zip(days.tolist(), n_day.tolist(), strict=True):
            per_date[str(np.datetime64(day, "D"))] += c
        table = pa.table(arrays)
        writer = writer or pq.ParquetWriter(path, table.schema)
        if pending is not None:
            pending.result()  # at most one table waits to be written
        pending = helper.submit(writer.write_table, table)
        lap("write")
    if pending is not None:
        pending.result()
    if writer is not None:
        writer.close()
    helper.shutdown()
    session.close()
    lap("write")
    data_print = fingerprint(coded_persons, coded_events, person_rows.result())
    lap("fingerprint")
    manifest = {
        "job": "features",
        "mode": "entities" if entities is not None else "as_of" if as_of is not None else "panel",
        "as_of_dates": [str(d.date()) for d in dates] if entities is None else [],
        "every": None if panel is None else panel[2],
        "catalog_version": catalog.catalog_version,
        "label_config_version": config.config_version,
        "label_config": {**config_record(config), "values": config.model_dump(mode="json")},
        "horizon_days": horizon,
        "data": data_print,
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
            for o in outcomes
        },
        "features": [f.name for f in catalog.features()],
        "output": path.name,
        "seconds": round(time.perf_counter() - started, 2),
        "stage_seconds": stages,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    return manifest
