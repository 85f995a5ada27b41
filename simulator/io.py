"""Writing the simulator's output: persons, events and truth as Parquet.

Contract: columns and enumerations come from :mod:`features.contract`; times
are naive Asia/Shanghai local ``timestamp[us]``, dates ``date32``. Ids are
built as byte buffers (no Python string per row), events are written in row
groups so a million-person run stays within memory, and every writer option
is fixed so the same input gives the same bytes.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.contract import (
    DRUGS,
    EVENT_COLUMN_NAMES,
    EVENT_TYPES,
    HOUSEHOLDS,
    LIVING,
    PERSON_COLUMN_NAMES,
    PROGRAMS,
    SOURCES,
)
from simulator.observation import RESULTS
from simulator.population import Population

ROW_GROUP = 2_000_000
_WRITER = {"compression": "zstd", "compression_level": 1, "use_dictionary": True}
_EPOCH = date(1970, 1, 1)
_US_PER_DAY = 86_400_000_000


def ids(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """``prefix`` + zero-padded numbers, e.g. ``p-000123``, built without Python strings."""
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    size = len(head) + width
    out = np.empty((len(numbers), size), dtype=np.uint8)
    out[:, : len(head)] = head
    rest = np.asarray(numbers, dtype=np.int64).copy()
    for j in range(size - 1, len(head) - 1, -1):
        out[:, j] = rest % 10 + 48
        rest //= 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int32) * size
    return pa.StringArray.from_buffers(
        len(numbers), pa.py_buffer(offsets.tobytes()), pa.py_buffer(out.tobytes())
    )


def person_ids(n: int) -> pa.StringArray:
    return ids("p-", np.arange(1, n + 1), max(6, len(str(n))))


def worker_ids(pop: Population) -> pa.StringArray:
    town_w = max(2, len(str(len(pop.town_names))))
    rank_w = max(2, len(str(int(pop.worker_rank.max(initial=1)))))
    town = np.char.zfill((pop.worker_town + 1).astype(str), town_w)
    rank = np.char.zfill(pop.worker_rank.astype(str), rank_w)
    return pa.array(np.char.add(np.char.add(np.char.add("w-", town), "-"), rank).tolist())


def _labels(
    names: tuple[str, ...], codes: np.ndarray, missing: np.ndarray | None = None
) -> pa.Array:
    mask = None if missing is None else pa.array(missing)
    taken = pc.take(pa.array(list(names), pa.string()), pa.array(codes.astype(np.int32)))
    return taken if mask is None else pc.if_else(mask, pa.scalar(None, pa.string()), taken)


def _dates(start: date, days: np.ndarray) -> pa.Array:
    return pa.array((start - _EPOCH).days + days.astype(np.int32), pa.date32())


def _optional_int(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.int64), pa.int64(), mask=missing)


def write_persons(pop: Population, start: date, path: Path) -> pa.StringArray:
    """Write persons.parquet; returns the person ids (index = person number)."""
    pid = person_ids(len(pop))
    miss = pop.missing
    district = pop.town_district[pop.town]
    cols = {
        "person_id": pid,
        "sex": _labels(("F", "M"), pop.male.astype(np.int8)),
        "birth_year": pa.array(pop.birth_year.astype(np.int64)),
        "district": _labels(pop.district_names, district),
        "town": _labels(pop.town_names, pop.town),
        "worker_id": pc.take(worker_ids(pop), pa.array(pop.worker)),
        "program": _labels(PROGRAMS, pop.program),
        "program_start": _dates(start, pop.start_day),
        "program_end": _dates(start, pop.end_day),
        "primary_drug": _labels(DRUGS, pop.drug),
        "first_use_year": _optional_int(pop.first_use_year, miss["first_use_year"]),
        "prior_compulsory_detox": _optional_int(pop.prior_detox, miss["prior_compulsory_detox"]),
        "household": _labels(HOUSEHOLDS, pop.non_local.astype(np.int8), miss["household"]),
        "living": _labels(LIVING, pop.living, miss["living"]),
        "marital": _labels(pop.marital_names, pop.marital, miss["marital"]),
        "education": _labels(pop.education_names, pop.education, miss["education"]),
    }
    table = pa.table([cols[c] for c in PERSON_COLUMN_NAMES], names=list(PERSON_COLUMN_NAMES))
    pq.write_table(table, path, **_WRITER)
    return pid


def _event_table(
    ev: dict[str, np.ndarray],
    lo: int,
    hi: int,
    start: date,
    pid: pa.StringArray,
    result_names: tuple[str, ...] = RESULTS,
) -> pa.Table:
    part = {k: v[lo:hi] for k, v in ev.items()}
    day_us = (start - _EPOCH).days * _US_PER_DAY
    ts = day_us + part["day"].astype(np.int64) * _US_PER_DAY + part["tod"].astype(np.int64) * 10**6
    rec = ts + part["lag"].astype(np.int64) * 10**6
    result = part["result"]
    value = part["value"].astype(np.float64)
    cols = {
        "event_id": ids("e-", np.arange(lo + 1, hi + 1), max(9, len(str(len(ev["day"]))))),
        "person_id": pc.take(pid, pa.array(part["person"])),
        "ts": pa.array(ts, pa.timestamp("us")),
        "recorded_at": pa.array(rec, pa.timestamp("us")),
        "type": _labels(EVENT_TYPES, part["type"]),
        "result": _labels(result_names, np.maximum(result, 0), result < 0),
        "value": pa.array(value, pa.float64(), mask=np.isnan(value)),
        "source": _labels(SOURCES, part["source"]),
    }
    return pa.table([cols[c] for c in EVENT_COLUMN_NAMES], names=list(EVENT_COLUMN_NAMES))


def write_events(
    ev: dict[str, np.ndarray],
    start: date,
    pid: pa.StringArray,
    path: Path,
    result_names: tuple[str, ...] = RESULTS,
) -> int:
    """Write events.parquet in row groups; returns the number of events.

    ``result`` codes index ``result_names`` (default the simulator's own results;
    :mod:`simulator.details` adds purchases' and placements' words after them).
    """
    n = len(ev["day"])
    first = _event_table(ev, 0, min(n, ROW_GROUP), start, pid, result_names)
    with pq.ParquetWriter(path, first.schema, **_WRITER) as writer:
        writer.write_table(first, row_group_size=ROW_GROUP)
        for lo in range(ROW_GROUP, n, ROW_GROUP):
            part = _event_table(ev, lo, min(n, lo + ROW_GROUP), start, pid, result_names)
            writer.write_table(part, row_group_size=ROW_GROUP)
    return n


def write_truth(
    person: np.ndarray,
    day: np.ndarray,
    p_relapse: np.ndarray,
    p_loss: np.ndarray,
    horizon: int,
    start: date,
    pid: pa.StringArray,
    path: Path,
) -> int:
    """Write truth.parquet: two rows (relapse, loss_of_contact) per cohort row."""
    n = len(person)
    both = np.repeat(np.arange(n), 2)
    outcome = np.tile(np.array([0, 1], dtype=np.int8), n)
    p = np.empty(2 * n)
    p[0::2], p[1::2] = p_relapse, p_loss
    table = pa.table(
        {
            "person_id": pc.take(pid, pa.array(person[both])),
            "as_of": _dates(start, day[both]),
            "outcome": _labels(("relapse", "loss_of_contact"), outcome),
            "horizon_days": pa.array(np.full(2 * n, horizon, dtype=np.int32)),
            "p": pa.array(p),
        }
    )
    pq.write_table(table, path, row_group_size=ROW_GROUP, **_WRITER)
    return 2 * n
