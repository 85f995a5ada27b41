"""The numpy point-in-time engine: catalog -> a few array passes per chunk of rows.

Design
------
Input: :class:`features.engine.records.Events` (coded once per job, grouped by
person) and entity rows ``(pidx, as_us)``. A chunk of entity rows is joined
to its persons' events by offsets alone — pair ``j`` is (row ``rr[j]``, event
``e[j]``) — with no hashing and no string compares. Everything else is a
handful of vectorised passes over those pairs:

* **Atoms.** Every event filter the catalog, the cohort rule and the labels
  use is compiled into *atoms*: classes of (type code, result code) that no
  filter tells apart (result codes kept apart for ``last_category`` and
  ``program_exit``). A 2-D lookup gives each event its atom once; a filter
  is then a short list of atoms. The current catalog needs ~25 atoms.
* **The time rule**, per pair: ``rec < as_of <= sup`` (knowledge time and
  corrections, :mod:`features.engine.sql_events`). Invisible pairs are dropped first.
* **Windows.** Each visible pair gets its age bucket relative to its row's
  as_of, ``d = as_of - ts``, split at every window any feature uses (30, 90,
  120, 180, 365 days): bucket ``k`` holds ``edge[k-1] < d <= edge[k]``.
  ONE scatter-add counts (row, atom, bucket); a cumulative sum over buckets
  gives every window (30/90/180/365/all) of every atom, and a count feature
  is the sum of its filter's atoms at its window's bucket.
* **Last/first-of features.** ONE scatter-max of ``ts`` per (row, atom)
  yields ``days_since_*`` (max over the filter's atoms), ``last_*``
  categories (the atom — hence the result — with the latest ts, ties to the
  larger result code as in SQL ``arg_max(rc, ts*16+rc)``), ``employed_now``,
  the consecutive-miss reset point and the cohort's lost / restored /
  transfer times; a scatter-min over exit atoms gives the first exit.
* Sums (values) scatter-add over the few atoms that carry values;
  ``consecutive`` counts the misses after the reset; ``state_days`` sorts only
  the employment events to walk their spells.
* **Labels** (:func:`features.labels.chunk_labels`) use the same pairs with
  the label window (final versions only): scatter-min of outcome / exit times
  and scatter-max of transfers per (row, atom).

Chunks of rows are cut so each holds at most ``PAIR_BUDGET`` pairs, which
bounds memory (~60 bytes per pair) whatever the panel size. A training
panel is the same call with more rows: each (row, event) pair costs a few
nanoseconds, so 24 monthly as_of over 10 M events is ~25 passes over
~125 M pairs, with no per-date re-read of the events.

Semantics are exactly those of the SQL compiler in :mod:`features.engine.sql_backend` (kept
as the declarative reference; ``tests/features/test_fast_engine.py``
cross-checks the two on random histories), with one deliberate difference:
a NaN ``value`` counts as missing in sums (SQL ``sum`` of a NaN read from
Parquet is NaN).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.catalog import AlertSettings, AlertSpec, Catalog, EventFilter, FeatureSpec, Missing
from features.config import LabelConfig
from features.contract import PERSON_COLUMNS
from features.engine.alert_rules import AlertInputs, raise_alerts
from features.engine.codes import DAY_US, RESULT_CODES, TYPE_CODES
from features.engine.protocol import CHUNK_ROWS, STATUS_NAMES, Alerts, Evaluated
from features.engine.records import Events, Persons, lookup_codes
from features.engine.session import EntityRows, Session

I64_MIN = np.iinfo(np.int64).min
I64_MAX = np.iinfo(np.int64).max
#: Pairs (entity row x event of that person) per chunk: bounds the working memory.
PAIR_BUDGET = 6_000_000
_REQUIRED = {c.name: c.required for c in PERSON_COLUMNS}
Filters = tuple[EventFilter, ...]


def _as_filters(f: EventFilter | Iterable[EventFilter]) -> Filters:
    return (f,) if isinstance(f, EventFilter) else tuple(f)


def _type(t: str) -> Filters:
    return (EventFilter(types=(t,)),)


@dataclass
class Plan:
    """Atoms of the filters a catalog + label config use, and the window edges."""

    catalog: Catalog
    config: LabelConfig
    filters: list[Filters] = field(default_factory=list)
    split_types: set[str] = field(default_factory=set)
    table: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int16))
    atom_rc: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    members: dict[Filters, np.ndarray] = field(default_factory=dict)
    n_atoms: int = 0
    edges: tuple[int, ...] = ()
    sum_atoms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def atoms(self, f: EventFilter | Iterable[EventFilter]) -> np.ndarray:
        return self.members[_as_filters(f)]

    def bucket(self, window: object) -> int:
        """Index into the cumulated buckets for a window (days or "all")."""
        return len(self.edges) if window == "all" else self.edges.index(int(str(window)))


def alert_contact(cat: Catalog, alert: AlertSpec) -> Filters:
    """The contact filter of a ``no_contact_since`` alert: the catalog's one ``contact``."""
    return cat.contact


def _event_filter_of(cat: Catalog, spec: FeatureSpec) -> Filters:
    return cat.contact if spec.events == "contact" else _as_filters(spec.events)  # type: ignore[arg-type]


def compile_plan(cat: Catalog, config: LabelConfig, alerts: bool = False) -> Plan:
    """Atoms for every filter of the catalog, the cohort rule and the labels (and, with
    ``alerts``, of the alert and cohort-flag rules: a job without alerts carries fewer atoms)."""
    plan = Plan(cat, config)
    want: list[Filters] = [cat.contact]
    sums: list[Filters] = []
    for spec in cat.specs:
        if spec.events is None:
            continue
        want.append(_event_filter_of(cat, spec))
        if spec.versus is not None:
            want.append(_as_filters(spec.versus))
        if spec.kind == "last_category":
            plan.split_types.update(t for f in _event_filter_of(cat, spec) for t in f.types)
        if spec.kind == "sum":
            sums.append(_event_filter_of(cat, spec))
    for t in ("program_exit", "lost_contact", "contact_restored", "transfer_out", "transfer_in"):
        want.append(_type(t))
    for alert in cat.alerts if alerts else ():
        want.append(_as_filters(alert.events))
        if alert.contact is not None:
            want.append(alert_contact(cat, alert))
    if alerts:
        want += [_as_filters(f.events) for f in cat.cohort_flags if f.events is not None]
    plan.split_types.add("program_exit")
    for outcome in config.outcomes.values():
        want.append(tuple(outcome.positive))
        want.append(tuple(outcome.consecutive.required))
    plan.filters = list(dict.fromkeys(want))
    n_t, n_r = max(TYPE_CODES.values()) + 1, max(RESULT_CODES.values()) + 1
    type_of = {c: t for t, c in TYPE_CODES.items()}
    result_of = {c: r for r, c in RESULT_CODES.items()}
    sig_ids: dict[tuple[object, ...], int] = {}
    table = np.full((n_t, n_r), -1, np.int16)
    rcs: list[int] = []
    grid_members: dict[Filters, set[int]] = {f: set() for f in plan.filters}
    for tc in range(1, n_t):
        t = type_of[tc]
        for rc in range(n_r):
            r = result_of.get(rc)
            bits = tuple(any(f.matches(t, r) for f in fs) for fs in plan.filters)
            if not any(bits):
                continue
            split = rc if t in plan.split_types else -1
            sig = (*bits, split)
            if sig not in sig_ids:
                sig_ids[sig] = len(sig_ids)
                rcs.append(rc)
            atom = sig_ids[sig]
            table[tc, rc] = atom
            for fs, bit in zip(plan.filters, bits, strict=True):
                if bit:
                    grid_members[fs].add(atom)
    plan.table = table
    plan.atom_rc = np.array(rcs, np.int64)
    plan.n_atoms = len(sig_ids)
    plan.members = {f: np.array(sorted(a), np.int64) for f, a in grid_members.items()}
    found = set(cat.count_windows())
    for spec in cat.specs:
        if spec.kind == "sum":
            found.update(int(str(w)) for w in spec.windows if w != "all")
    plan.edges = tuple(sorted(found))
    plan.sum_atoms = (
        np.unique(np.concatenate([plan.members[f] for f in sums]))
        if sums
        else np.zeros(0, np.int64)
    )
    return plan


# --------------------------------------------------------------------------- pairs


def row_chunks(ev: Events, pidx: np.ndarray, budget: int = PAIR_BUDGET) -> Iterator[slice]:
    """Consecutive row slices holding at most ``budget`` (row, event) pairs each."""
    n = len(pidx)
    if n == 0:
        return
    cum = np.cumsum(ev.starts[pidx + 1] - ev.starts[pidx])
    lo = 0
    while lo < n:
        base = cum[lo - 1] if lo else 0
        hi = int(np.searchsorted(cum, base + budget, side="right"))
        hi = max(hi, lo + 1)
        yield slice(lo, min(hi, n))
        lo = hi


def _pairs(ev: Events, pidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = ev.starts[pidx]
    cnt = ev.starts[pidx + 1] - lo
    total = int(cnt.sum())
    rr = np.repeat(np.arange(len(pidx), dtype=np.int64), cnt)
    e = np.arange(total, dtype=np.int64)
    e += np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
    return rr, e


def _group_max(values: np.ndarray, atoms: np.ndarray, fill: int = I64_MIN) -> np.ndarray:
    """Row-wise max over the given atom columns of an (n, A) array."""
    if not len(atoms):
        return np.full(len(values), fill, np.int64)
    return np.asarray(values[:, atoms].max(axis=1))


def _group_min(values: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    if not len(atoms):
        return np.full(len(values), I64_MAX, np.int64)
    return np.asarray(values[:, atoms].min(axis=1))


@dataclass
class _Seen:
    """Aggregates of the events known at each row's as_of (one chunk)."""

    counts: np.ndarray  # (B, n, A) int32, cumulated over buckets
    last: np.ndarray  # (n, A) int64 max ts, I64_MIN when none
    first: np.ndarray  # (n, A) int64 min ts (exit atoms only), I64_MAX when none
    sums: np.ndarray  # (B, n, S) float64 cumulated, S = plan.sum_atoms
    rr: np.ndarray  # visible pairs: row, atom, ts, event index
    at: np.ndarray
    ts: np.ndarray
    e: np.ndarray


def _seen(
    plan: Plan,
    ev: Events,
    atom_e: np.ndarray,
    as_r: np.ndarray,
    rr: np.ndarray,
    e: np.ndarray,
    need_all: bool,
) -> _Seen:
    n, A, B = len(as_r), plan.n_atoms, len(plan.edges) + 1
    at = atom_e[e]
    asr = as_r[rr]
    vis = ev.rec[e] < asr
    vis &= at >= 0
    if ev.sup is not None:
        vis &= ev.sup[e] >= asr
    k = np.flatnonzero(vis)
    del vis
    rr_k, at_k, e_k, as_k = rr[k], at[k].astype(np.int64), e[k], asr[k]
    ts_k = ev.ts[e_k]
    d = as_k - ts_k
    del as_k
    b = np.zeros(len(k), np.int64)
    for edge in plan.edges:
        b += d > edge * DAY_US
    cell = rr_k * A + at_k
    # layout (bucket, row, atom): the cumulative sum over buckets adds whole planes
    counts: np.ndarray = np.zeros(B * n * A, np.int32)
    # an int32 one takes ufunc.at's fast path; a Python 1 made this ~25x slower
    np.add.at(counts, b * (n * A) + cell, np.int32(1))
    counts = counts.reshape(B, n, A)
    for j in range(1, B):
        counts[j] += counts[j - 1]
    last = np.full(n * A, I64_MIN, np.int64)
    np.maximum.at(last, cell, ts_k)
    first = np.full(n * A, I64_MAX, np.int64)
    exit_atoms = plan.atoms(_type("program_exit"))
    sel = np.flatnonzero(np.isin(at_k, exit_atoms))
    np.minimum.at(first, cell[sel], ts_k[sel])
    S = len(plan.sum_atoms)
    sums: np.ndarray = np.zeros(n * max(S, 1) * B, np.float64)
    if S and need_all:
        local = np.full(A, -1, np.int64)
        local[plan.sum_atoms] = np.arange(S)
        sel = np.flatnonzero(local[at_k] >= 0)
        vals = ev.value[e_k[sel]]
        ok = ~np.isnan(vals)
        sel, vals = sel[ok], vals[ok]
        np.add.at(sums, b[sel] * (n * S) + rr_k[sel] * S + local[at_k[sel]], vals)
    sums = sums.reshape(B, n, max(S, 1))
    for j in range(1, B):
        sums[j] += sums[j - 1]
    return _Seen(counts, last.reshape(n, A), first.reshape(n, A), sums, rr_k, at_k, ts_k, e_k)


# --------------------------------------------------------------------------- outputs


def _impute(missing: Missing, as_day: np.ndarray, start_day: np.ndarray) -> np.ndarray | float:
    if missing.rule == "days_in_program":
        return np.asarray(as_day - start_day)
    return float(missing.value) if missing.rule == "constant" else 0.0


def _count(plan: Plan, seen: _Seen, atoms: np.ndarray, window: object) -> np.ndarray:
    plane = seen.counts[plan.bucket(window)]
    if not len(atoms):
        return np.zeros(len(plane), np.int32)
    if len(atoms) == 1:
        return np.asarray(plane[:, atoms[0]].copy())
    return np.asarray(plane[:, atoms].sum(axis=1, dtype=np.int32))


def _state_days(
    plan: Plan,
    seen: _Seen,
    spec: FeatureSpec,
    as_day: np.ndarray,
    names: dict[int | str, str],
    out: dict[str, np.ndarray],
) -> None:
    f_atoms = plan.atoms(_event_filter_of(plan.catalog, spec))
    both = np.union1d(f_atoms, plan.atoms(spec.versus))  # type: ignore[arg-type]
    sel = np.flatnonzero(np.isin(seen.at, both))
    rr, ts = seen.rr[sel], seen.ts[sel]
    on = np.isin(seen.at[sel], f_atoms)
    order = np.lexsort((on, ts, rr))
    rr, ts, on = rr[order], ts[order], on[order]
    t = ts // DAY_US
    nxt = as_day[rr].copy()
    if len(rr) > 1:
        same = rr[1:] == rr[:-1]
        nxt[:-1] = np.where(same, t[1:], nxt[:-1])
    n = len(as_day)
    for w, name in names.items():
        lo = (as_day[rr] - int(str(w))) if w != "all" else np.full(len(rr), -1, np.int64)
        spell = np.maximum(0, np.minimum(nxt, as_day[rr]) - np.maximum(t, lo))
        spell = np.where(on, spell, 0)
        out[name] = np.bincount(rr, weights=spell, minlength=n).astype(np.int32)


def _event_outputs(
    plan: Plan,
    seen: _Seen,
    spec: FeatureSpec,
    as_day: np.ndarray,
    start_day: np.ndarray,
    out: dict[str, np.ndarray],
) -> None:
    cat = plan.catalog
    f_atoms = plan.atoms(_event_filter_of(cat, spec))
    v_atoms = plan.atoms(spec.versus) if spec.versus else np.zeros(0, np.int64)
    single = len(spec.windows) == 1 and spec.windows[0] == "all"
    names: dict[int | str, str] = {
        w: spec.name if single else f"{spec.name}_{'all' if w == 'all' else f'{w}d'}"
        for w in spec.windows
    }
    n = len(as_day)
    if spec.kind == "count":
        for w, name in names.items():
            out[name] = _count(plan, seen, f_atoms, w)
    elif spec.kind == "sum":
        local = {a: i for i, a in enumerate(plan.sum_atoms.tolist())}
        cols = [local[a] for a in f_atoms.tolist()]
        for w, name in names.items():
            out[name] = seen.sums[plan.bucket(w)][:, cols].sum(axis=1).astype(np.float64)
    elif spec.kind == "days_since_last":
        last = _group_max(seen.last, f_atoms)
        none = last == I64_MIN
        fill = _impute(spec.missing, as_day, start_day)
        value = np.where(none, fill, as_day - np.where(none, 0, last) // DAY_US)
        out[spec.name] = np.rint(value).astype(np.int32)
        if spec.missing.flag:
            out[f"{spec.name}_imp"] = none.astype(np.int8)
    elif spec.kind == "last_category":
        if len(f_atoms):
            last = seen.last[:, f_atoms]
            key = np.where(last == I64_MIN, I64_MIN, last * 16 + plan.atom_rc[f_atoms])
            best = key.argmax(axis=1)
            none = key.max(axis=1) == I64_MIN
            code = np.where(none, -1, plan.atom_rc[f_atoms][best])
        else:
            none, code = np.ones(n, bool), np.full(n, -1)
        for choice in cat.choices_of(spec):
            out[f"{spec.name}_{choice}"] = (code == RESULT_CODES[choice]).astype(np.int8)
        out[f"{spec.name}_none"] = none.astype(np.int8)
    elif spec.kind == "consecutive":
        reset = _group_max(seen.last, v_atoms)
        reset = np.where(reset == I64_MIN, -1, reset)
        sel = np.flatnonzero(np.isin(seen.at, f_atoms))
        rr = seen.rr[sel]
        after = seen.ts[sel] > reset[rr]
        out[spec.name] = np.bincount(rr[after], minlength=n).astype(np.int32)
    elif spec.kind == "state_now":
        on = _group_max(seen.last, f_atoms)
        off = _group_max(seen.last, np.setdiff1d(v_atoms, f_atoms))
        out[spec.name] = ((on != I64_MIN) & (on >= off)).astype(np.int8)
    elif spec.kind == "state_days":
        _state_days(plan, seen, spec, as_day, names, out)
    elif spec.kind == "share_trend":
        r, p = spec.recent or 0, (spec.recent or 0) + (spec.prior or 0)
        nr, vr = _count(plan, seen, f_atoms, r), _count(plan, seen, v_atoms, r)
        np_ = _count(plan, seen, f_atoms, p) - nr
        vp = _count(plan, seen, v_atoms, p) - vr
        known = (nr + vr > 0) & (np_ + vp > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            trend = nr / (nr + vr) - np_ / (np_ + vp)
        fill = _impute(spec.missing, as_day, start_day)
        out[spec.name] = np.where(known, trend, fill).astype(np.float64)
        if spec.missing.flag:
            out[f"{spec.name}_imp"] = (~known).astype(np.int8)


@dataclass
class PersonColumns:
    """Person attributes as arrays indexed by pidx (prepared once per job)."""

    numbers: dict[str, np.ndarray]  # float64, NaN = missing
    categories: dict[str, np.ndarray]  # object, None = missing
    start_us: np.ndarray
    end_us: np.ndarray
    workers: np.ndarray  # object: worker_id as stored

    @classmethod
    def of(cls, persons: Persons, cat: Catalog) -> PersonColumns:
        frame = persons.frame
        numbers: dict[str, np.ndarray] = {}
        categories: dict[str, np.ndarray] = {}
        for spec in cat.specs:
            for col in (spec.column, spec.column_to):
                if col is None or col in numbers or col in categories:
                    continue
                if spec.kind == "person_category":
                    s = frame[col].astype("string")
                    values = s.to_numpy(dtype=object)
                    values[s.isna().to_numpy()] = None
                    categories[col] = values
                elif spec.kind in {"days_since_date", "days_until_date"}:
                    continue
                else:
                    numbers[col] = pd.to_numeric(frame[col]).to_numpy(dtype=float, na_value=np.nan)

        def micros(col: str) -> np.ndarray:
            values = pd.to_datetime(frame[col]).astype("datetime64[us]")
            return values.to_numpy().view("int64")

        return cls(
            numbers,
            categories,
            micros("program_start"),
            micros("program_end"),
            frame["worker_id"].to_numpy(dtype=object),
        )


def _person_outputs(
    cat: Catalog,
    spec: FeatureSpec,
    pc_: PersonColumns,
    p: np.ndarray,
    as_us: np.ndarray,
    as_day: np.ndarray,
    start_day: np.ndarray,
    out: dict[str, np.ndarray],
) -> None:
    col = spec.column or ""
    fill = _impute(spec.missing, as_day, start_day)
    missing: np.ndarray | None = None
    if spec.kind in {"years_since", "years_between", "person_number"}:
        x = pc_.numbers[col][p]
        missing = np.isnan(x)
        if spec.kind == "years_since":
            year = as_us.astype("datetime64[us]").astype("datetime64[Y]").astype(np.int64) + 1970
            value = year - x
        elif spec.kind == "years_between":
            value = pc_.numbers[spec.column_to or ""][p] - x
        else:
            value = x
        value = np.where(np.isnan(value), fill, value)
        out[spec.name] = np.rint(value).astype(np.int32)
        if spec.kind == "years_between":
            missing = np.zeros(len(p), bool)
    elif spec.kind in {"days_since_date", "days_until_date"}:
        us = pc_.start_us if col == "program_start" else pc_.end_us
        if col not in {"program_start", "program_end"}:  # pragma: no cover - catalog has these two
            raise ValueError(f"{spec.name}: date column {col!r} is not supported")
        day = us[p] // DAY_US
        diff = as_day - day if spec.kind == "days_since_date" else day - as_day
        out[spec.name] = diff.astype(np.int32)
        missing = np.zeros(len(p), bool)
    elif spec.kind == "person_category":
        values = pc_.categories[col][p]
        for choice in cat.choices_of(spec):
            out[f"{spec.name}_{choice}"] = (values == choice).astype(np.int8)
        isnull = np.array([v is None for v in values], bool) if len(values) else np.zeros(0, bool)
        if not _REQUIRED[col]:
            out[f"{spec.name}_unknown"] = isnull.astype(np.int8)
        missing = isnull
    if spec.missing.flag and missing is not None:
        out[f"{spec.name}_imp"] = missing.astype(np.int8)


def _status(
    plan: Plan, seen: _Seen, pc_: PersonColumns, p: np.ndarray, as_r: np.ndarray
) -> np.ndarray:
    """Cohort status code per row (index into STATUS_NAMES; 0 = active)."""
    exit_atoms = plan.atoms(_type("program_exit"))
    if len(exit_atoms):
        first = seen.first[:, exit_atoms]
        key = np.where(first == I64_MAX, I64_MAX, first * 16 + plan.atom_rc[exit_atoms])
        has_exit = key.min(axis=1) != I64_MAX
        exit_rc = plan.atom_rc[exit_atoms][key.argmin(axis=1)]
    else:
        has_exit, exit_rc = np.zeros(len(p), bool), np.zeros(len(p), np.int64)
    lost = _group_max(seen.last, plan.atoms(_type("lost_contact")))
    back = _group_max(seen.last, plan.atoms(_type("contact_restored")))
    out_ = _group_max(seen.last, plan.atoms(_type("transfer_out")))
    in_ = _group_max(seen.last, plan.atoms(_type("transfer_in")))
    is_lost = (lost != I64_MIN) & (np.maximum(back, -1) < lost)
    is_out = (out_ != I64_MIN) & (np.maximum(in_, -1) < out_)
    start, end = pc_.start_us[p], pc_.end_us[p] + DAY_US
    conds = [
        as_r < start,
        has_exit & (exit_rc == RESULT_CODES["custody"]),
        has_exit,
        as_r >= end,
        is_lost,
        is_out & plan.config.cohort.exclude_transferred_out,
    ]
    return np.select(conds, [1, 2, 3, 4, 5, 6], 0).astype(np.int8)


def evaluate_chunk(
    plan: Plan,
    ev: Events,
    atom_e: np.ndarray,
    pc_: PersonColumns,
    p: np.ndarray,
    as_r: np.ndarray,
    cohort_only: bool = False,
    alerts: AlertSettings | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, Alerts | None]:
    """Feature columns (catalog order; none if ``cohort_only``), status codes and, given
    ``alerts`` thresholds, the alerts and cohort flags of one chunk."""
    rr, e = _pairs(ev, p)
    seen = _seen(plan, ev, atom_e, as_r, rr, e, need_all=not cohort_only)
    del rr, e
    as_day = as_r // DAY_US
    start_day = pc_.start_us[p] // DAY_US
    out: dict[str, np.ndarray] = {}
    if not cohort_only:
        for spec in plan.catalog.specs:
            if spec.column is not None and spec.events is None:
                _person_outputs(plan.catalog, spec, pc_, p, as_r, as_day, start_day, out)
            else:
                _event_outputs(plan, seen, spec, as_day, start_day, out)
    raised = None if alerts is None else _alerts(plan, seen, ev, pc_, p, as_r, alerts)
    return out, _status(plan, seen, pc_, p, as_r), raised


def _alerts(
    plan: Plan,
    seen: _Seen,
    ev: Events,
    pc_: PersonColumns,
    p: np.ndarray,
    as_r: np.ndarray,
    settings: AlertSettings,
) -> Alerts:
    """The aggregates the alert rules read (:mod:`features.engine.alert_rules`), then the rules."""
    cat = plan.catalog
    got = AlertInputs(as_r, pc_.start_us[p], pc_.end_us[p], pc_.workers[p])
    for alert in cat.alerts:
        atoms = plan.atoms(alert.events)
        if alert.rule == "recorded_recently":
            cut = as_r - settings.recent_days * DAY_US
            sel = np.flatnonzero(np.isin(seen.at, atoms) & (ev.rec[seen.e] >= cut[seen.rr]))
            val = ev.value[seen.e[sel]]
            # the latest by ts; among equal ts the largest value (none lowest)
            order = np.lexsort((np.where(np.isnan(val), -np.inf, val), seen.ts[sel], seen.rr[sel]))
            sel = sel[order]
            rr = seen.rr[sel]
            latest = sel[np.r_[rr[1:] != rr[:-1], True]] if len(sel) else sel
            ts = np.full(len(p), I64_MIN, np.int64)
            value = np.full(len(p), np.nan)
            ts[seen.rr[latest]] = seen.ts[latest]
            value[seen.rr[latest]] = ev.value[seen.e[latest]]
            got.recent[alert.name] = (ts, value)
        else:
            got.last[alert.name] = _group_max(seen.last, atoms)
        if alert.window_days is not None:
            _window_inputs(alert, seen, ev, atoms, as_r, got)
        if alert.contact is not None:
            got.contact[alert.name] = _group_max(seen.last, plan.atoms(alert_contact(cat, alert)))
    for flag in cat.cohort_flags:
        if flag.events is not None:
            got.last[flag.name] = _group_max(seen.last, plan.atoms(flag.events))
    return raise_alerts(cat, settings, got)


def _window_inputs(
    alert: AlertSpec,
    seen: _Seen,
    ev: Events,
    atoms: np.ndarray,
    as_r: np.ndarray,
    got: AlertInputs,
) -> None:
    """Sums of values in an alert's window and the one before, or its distinct places."""
    n = len(as_r)
    sel = np.flatnonzero(np.isin(seen.at, atoms))
    rr, e = seen.rr[sel], seen.e[sel]
    age = as_r[rr] - seen.ts[sel]
    window = int(alert.window_days or 0) * DAY_US
    inside = age <= window
    if alert.rule == "places_at_least":
        place = ev.place[e]
        keep = inside & (place != 0)
        pairs = np.unique(np.stack([rr[keep], place[keep]]), axis=1)
        got.places[alert.name] = np.bincount(pairs[0], minlength=n).astype(np.int64)
        return
    value = np.nan_to_num(ev.value[e], nan=0.0)
    before = ~inside & (age <= window + int(alert.prior_days or 0) * DAY_US)
    got.sums[alert.name] = (
        np.bincount(rr[inside], weights=value[inside], minlength=n).astype(np.float64),
        np.bincount(rr[before], weights=value[before], minlength=n).astype(np.float64),
    )


def row_slices(
    ev: Events, pidx: np.ndarray, chunk_rows: int = CHUNK_ROWS, budget: int = PAIR_BUDGET
) -> list[slice]:
    """Pair-bounded row chunks (:func:`row_chunks`), each also at most ``chunk_rows`` rows."""
    out = []
    for sl in row_chunks(ev, pidx, budget):
        for lo in range(sl.start, sl.stop, chunk_rows):
            out.append(slice(lo, min(lo + chunk_rows, sl.stop)))
    return out


class ArrayBackend:
    """The array engine behind :class:`features.engine.protocol.Backend` (the hot path)."""

    name = "array"

    def __init__(self, pair_budget: int = PAIR_BUDGET) -> None:
        self.pair_budget = pair_budget

    def evaluate(
        self,
        session: Session,
        rows: EntityRows,
        catalog: Catalog,
        config: LabelConfig,
        *,
        cohort_only: bool = False,
        chunk_rows: int = CHUNK_ROWS,
        alerts: AlertSettings | None = None,
    ) -> Evaluated:
        """Features, cohort status (and alerts) of ``rows``, chunk by chunk of rows."""
        plan = compile_plan(catalog, config, alerts=alerts is not None)
        ev = session.events
        atom_e = lookup_codes(plan.table, ev.tc, ev.rc)
        cols = PersonColumns.of(session.persons, catalog)
        slices = row_slices(ev, rows.pidx, chunk_rows, self.pair_budget) or [slice(0, 0)]
        parts = [
            evaluate_chunk(
                plan, ev, atom_e, cols, rows.pidx[sl], rows.as_us[sl], cohort_only, alerts
            )
            for sl in slices
        ]
        data = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
        status = np.concatenate([p[1] for p in parts])
        raised = None
        if alerts is not None:
            chunks = [(p[2], sl.start) for p, sl in zip(parts, slices, strict=True) if p[2]]
            raised = Alerts.concat(chunks, [a.name for a in catalog.alerts])
        return Evaluated(pd.DataFrame(data, copy=False), STATUS_NAMES[status], raised)
