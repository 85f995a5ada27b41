"""Persons and events coded once per job into compact numpy columns.

Contract: :func:`load_persons` reads persons (a canonical frame or a Parquet
file) into :class:`Persons` — the person table in input order, its position
being the person index ``pidx``. :func:`load_events` reads events the same way
into :class:`Events`: one numpy array per column, rows grouped by ``pidx``
(``starts[p]:starts[p + 1]`` are person ``p``'s events) —

* ``pidx`` int32, ``tc``/``rc`` int8 type and result codes
  (:data:`features.sql.TYPE_CODES`, :data:`features.sql.RESULT_CODES`; 0 = no
  or free-text result), ``ts``/``rec`` int64 microseconds of naive local time
  (``rec`` = ``recorded_at``, default ``ts``), ``value`` float64 (NaN = none);
* ``sup`` int64, when each version was superseded by a correction
  (:mod:`features.events`: the earliest strictly later ``recorded_at`` of the
  same person, type and ``ts``), or ``None`` when no event is ever corrected.

Events of persons not in the person table are dropped (the SQL engine's
inner join did the same). Parquet is streamed in record batches so only the
coded columns (≈ 38 bytes per event) stay resident; dictionary-encoded string
columns are mapped through their (small) dictionaries, never string by string.

Corrections are found without sorting every event: a 64-bit hash of (person,
type, ts) is sorted (a SIMD sort, ~1 s for 50 M) to find the keys that occur
more than once; only those events are compared exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.contract import LOCAL_TZ
from features.sql import MAX_US, RESULT_CODES, TYPE_CODES

Source = pd.DataFrame | str | Path
BATCH_ROWS = 2_000_000
EVENT_READ = ("person_id", "ts", "recorded_at", "type", "result", "value")


@dataclass
class Persons:
    """The person table (pandas, input order) and its id index (position = pidx)."""

    frame: pd.DataFrame
    ids: pd.Index

    def __len__(self) -> int:
        return len(self.frame)

    def index_of(self, person_ids: np.ndarray) -> np.ndarray:
        """pidx of each id (-1 when unknown)."""
        return np.asarray(self.ids.get_indexer(pd.Index(person_ids)), dtype=np.int64)


@dataclass
class Events:
    """Coded events grouped by person (see the module docstring)."""

    pidx: np.ndarray
    ts: np.ndarray
    rec: np.ndarray
    tc: np.ndarray
    rc: np.ndarray
    value: np.ndarray
    sup: np.ndarray | None
    starts: np.ndarray
    n_read: int
    max_rec: int | None

    def __len__(self) -> int:
        return len(self.ts)


def _table(source: Source, columns: tuple[str, ...] | None = None) -> pa.Table:
    if isinstance(source, pd.DataFrame):
        frame = source if columns is None else source[[c for c in columns if c in source]]
        return pa.Table.from_pandas(frame, preserve_index=False)
    return pq.read_table(str(source), columns=list(columns) if columns else None)


def load_persons(source: Source) -> Persons:
    """Persons as a pandas frame in input order plus the id index."""
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True)
    else:
        frame = pq.read_table(str(source)).to_pandas()
    ids = pd.Index(frame["person_id"].astype("string").to_numpy(dtype=object))
    return Persons(frame, ids)


def _micros(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamps (any unit, naive or zoned, or strings) as local-time microseconds."""
    if pa.types.is_timestamp(col.type):
        if col.type.tz is not None:
            col = pc.local_timestamp(pc.cast(col, pa.timestamp(col.type.unit, LOCAL_TZ)))
        out = pc.cast(col, pa.timestamp("us")).cast(pa.int64()).fill_null(0)
        return np.asarray(out.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_date(col.type):
        out = pc.cast(pc.cast(col, pa.timestamp("us")), pa.int64()).fill_null(0)
        return np.asarray(out.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = pd.to_datetime(pd.Series(col.to_pandas()))
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    micros = values.astype("datetime64[us]")
    return np.where(micros.isna().to_numpy(), 0, micros.to_numpy().view("int64"))


def _dict_codes(col: pa.Array, lookup: object, small: bool) -> np.ndarray:
    """Map a string (or dictionary) array through ``lookup`` of its distinct values.

    ``lookup(values: np.ndarray[object]) -> np.ndarray[int]``; nulls map to the
    last slot, which the caller fills (-1 for persons, 0 for codes).
    """
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    dictionary = col.dictionary
    if not pa.types.is_string(dictionary.type) and not pa.types.is_large_string(dictionary.type):
        dictionary = pc.cast(dictionary, pa.string())
    indices = col.indices
    n_dict = len(dictionary)
    ix = (
        indices.fill_null(n_dict).to_numpy(zero_copy_only=False)
        if indices.null_count
        else indices.to_numpy(zero_copy_only=False)
    ).astype(np.int64, copy=False)
    fill = 0 if small else -1
    table = np.full(n_dict + 1, fill, dtype=np.int64)
    if small:
        used = np.arange(n_dict)
    else:  # a row group's dictionary may name far more persons than it uses
        used = np.flatnonzero(np.bincount(ix, minlength=n_dict + 1)[:n_dict])
    if len(used):
        values = dictionary.take(pa.array(used)).to_numpy(zero_copy_only=False)
        table[used] = lookup(values)  # type: ignore[operator]
    return table[ix]


def _small_lookup(codes: dict[str, int]) -> object:
    return lambda values: np.array([codes.get(v, 0) for v in values], dtype=np.int64)


def _batches(source: Source) -> tuple[Iterable[pa.RecordBatch], int]:
    """Record batches of the event columns (streamed for Parquet) and the row count."""
    if isinstance(source, pd.DataFrame):
        table = _table(source, EVENT_READ)
        return table.to_batches(max_chunksize=BATCH_ROWS), table.num_rows
    f = pq.ParquetFile(str(source), read_dictionary=["person_id", "type", "result"])
    names = set(f.schema_arrow.names)
    cols = [c for c in EVENT_READ if c in names]
    return f.iter_batches(batch_size=BATCH_ROWS, columns=cols), f.metadata.num_rows


def load_events(source: Source, persons: Persons) -> Events:
    """Code, group by person and correction-mark the events (see module docstring)."""
    batches, n = _batches(source)
    pidx: np.ndarray = np.empty(n, np.int32)
    ts: np.ndarray = np.empty(n, np.int64)
    rec: np.ndarray = np.empty(n, np.int64)
    tc: np.ndarray = np.empty(n, np.int8)
    rc: np.ndarray = np.empty(n, np.int8)
    value: np.ndarray = np.empty(n, np.float64)
    types, results = _small_lookup(TYPE_CODES), _small_lookup(RESULT_CODES)
    person_lookup = persons.index_of
    pos = 0
    for batch in batches:
        k = batch.num_rows
        names = batch.schema.names
        sl = slice(pos, pos + k)
        pidx[sl] = _dict_codes(batch.column("person_id"), person_lookup, small=False)
        ts[sl] = _micros(batch.column("ts"))
        if "recorded_at" in names:
            r = batch.column("recorded_at")
            rec[sl] = _micros(r)
            if r.null_count:
                nulls = r.is_null().to_numpy(zero_copy_only=False)
                rec[sl][nulls] = ts[sl][nulls]
        else:
            rec[sl] = ts[sl]
        tc[sl] = _dict_codes(batch.column("type"), types, small=True)
        if "result" in names:
            rc[sl] = _dict_codes(batch.column("result"), results, small=True)
        else:
            rc[sl] = 0
        if "value" in names:
            v = batch.column("value")
            value[sl] = pc.cast(v, pa.float64()).to_numpy(zero_copy_only=False)
        else:
            value[sl] = np.nan
        pos += k
    max_rec = int(rec.max()) if n else None
    known = pidx >= 0
    if not known.all():
        pidx, ts, rec, tc, rc, value = (a[known] for a in (pidx, ts, rec, tc, rc, value))
    if len(pidx) > 1 and not bool(np.all(pidx[1:] >= pidx[:-1])):
        order = _stable_order(pidx)
        pidx, ts, rec, tc, rc, value = (a[order] for a in (pidx, ts, rec, tc, rc, value))
    starts = np.searchsorted(pidx, np.arange(len(persons) + 1)).astype(np.int64)
    sup = superseded_at(pidx, tc, ts, rec)
    return Events(pidx, ts, rec, tc, rc, value, sup, starts, n, max_rec)


def _stable_order(pidx: np.ndarray) -> np.ndarray:
    """A stable argsort of a non-negative int32 key by one fast (SIMD) sort of packed keys."""
    packed = (pidx.astype(np.uint64) << np.uint64(32)) | np.arange(len(pidx), dtype=np.uint64)
    packed.sort()
    return (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (wrapping uint64 arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def superseded_at(
    pidx: np.ndarray, tc: np.ndarray, ts: np.ndarray, rec: np.ndarray
) -> np.ndarray | None:
    """When each event version was superseded (``MAX_US`` if never); None if none ever is."""
    n = len(ts)
    if n < 2 or not bool(np.any(rec > ts)):
        return None
    h = np.empty(n, np.uint64)
    for lo in range(0, n, BATCH_ROWS):  # chunked: bounded temporaries
        sl = slice(lo, lo + BATCH_ROWS)
        with np.errstate(over="ignore"):
            h[sl] = mix(
                ts[sl].view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                + pidx[sl].astype(np.uint64) * np.uint64(64)
                + tc[sl].astype(np.uint64)
            )
    s = np.sort(h)
    dup = s[1:][s[1:] == s[:-1]]
    del s
    if not len(dup):
        return None
    dup = np.unique(dup)
    cand = np.flatnonzero(np.isin(h, dup))
    order = np.lexsort((rec[cand], ts[cand], tc[cand], pidx[cand]))
    c = cand[order]
    p, t, s_, r = pidx[c], tc[c], ts[c], rec[c]
    new_group = np.ones(len(c), bool)
    new_group[1:] = (p[1:] != p[:-1]) | (t[1:] != t[:-1]) | (s_[1:] != s_[:-1])
    new_run = new_group.copy()
    new_run[1:] |= r[1:] != r[:-1]
    run_id = np.cumsum(new_run) - 1
    run_first = np.flatnonzero(new_run)
    # the next run's recorded_at, when it belongs to the same (person, type, ts) group
    nxt = np.full(len(run_first), MAX_US, np.int64)
    if len(run_first) > 1:
        same = ~new_group[run_first[1:]]
        nxt[:-1] = np.where(same, r[run_first[1:]], MAX_US)
    sup = np.full(n, MAX_US, np.int64)
    sup[c] = nxt[run_id]
    return sup if bool(np.any(sup != MAX_US)) else None
