"""Labels for both outcomes over a horizon, censored only by what as_of knows (DESIGN §3).

Contract: a label for (person, as_of) is built in hindsight from events with
``as_of <= ts < window end`` (final versions: corrections applied), where the
window end is ``as_of + horizon`` or the day after the planned end of the
agreement if that comes first (``censoring.planned_end: truncate``; ``drop``
leaves such rows out). Whether a row is used is decided only by what is known
at its as_of — the planned end and the data snapshot ``observed_until``
(default: the latest ``recorded_at``) — never by whether the outcome happened:

* a window that ends after ``observed_until`` is unknown (null), whatever
  happened in its observed part;
* unplanned exits (the first ``program_exit`` in the window, a
  ``transfer_out`` not followed by a ``transfer_in``) are competing events:
  an outcome at or before the exit counts, a window they end without one is 0;
* :func:`build_labels` also leaves rows outside the cohort at as_of unknown
  (cohort membership uses knowledge time, like features).

The rule itself lives in one place, :func:`chunk_labels` (on the array engine's
(row, event) pairs, :mod:`features.engine.array_backend`); this module also holds the derived
loss-of-contact rule (``outcomes.loss_of_contact.derived``, off by default), whose
first-outcome time comes from SQL window functions (:func:`derived_query`). It
looks only inside the window and is causal (a time depends only on events before
it): contact gaps are measured from as_of and from each contact in the window,
and the missed check-ins must both fall in the window.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.catalog import load_catalog
from features.config import ConsecutiveRule, LabelConfig, Outcome, load_label_config
from features.engine import Session, Source, get_historical_features
from features.engine import array_backend as fast
from features.engine.codes import DAY_US, MAX_US, RESULT_CODES, TYPE_CODES
from features.engine.records import Events, lookup_codes
from features.engine.session import EntityRows
from features.engine.sql_backend import filter_sql


def derived_query(config: LabelConfig, outcome: Outcome) -> str:
    """SQL over ``lab(row_id, person_id, as_us, end_us)``: row_id, derived_us (null = none).

    The derived loss-of-contact time: the first moment there has been no
    contact of any kind for more than ``no_contact_days`` (counting from as_of
    and from each contact in the window), or the ``missed_in_a_row``-th
    required check-in missed in a row, whichever is earlier.
    """
    rule = config.outcomes[outcome].derived
    gap = rule.no_contact_days * DAY_US
    check_in = TYPE_CODES["check_in"]
    attended = f"(tc = {check_in} AND rc = {RESULT_CODES['attended']})"
    missed = f"(tc = {check_in} AND rc = {RESULT_CODES['missed']})"
    return f"""
WITH w AS (
  SELECT n.row_id, v.ts_us, v.tc, v.rc
  FROM lab n JOIN ev v ON v.person_id = n.person_id
  WHERE v.ts_us >= n.as_us AND v.ts_us < n.end_us AND v.sup_us = {MAX_US}
),
c AS (SELECT w.row_id, w.ts_us, coalesce(lag(w.ts_us) OVER (PARTITION BY w.row_id
          ORDER BY w.ts_us), n.as_us) AS prev
      FROM w JOIN lab n USING (row_id) WHERE {filter_sql(load_catalog().contact)}),
g AS (SELECT row_id, max(ts_us) AS last_us,
             min(prev + {gap}) FILTER (WHERE ts_us - prev > {gap}) AS gap_us
      FROM c GROUP BY row_id),
m AS (SELECT row_id, ts_us, {missed} AS missed,
             sum(CAST({attended} AS INTEGER)) OVER (PARTITION BY row_id ORDER BY ts_us
                 ROWS UNBOUNDED PRECEDING) AS grp
      FROM w WHERE tc = {check_in}),
r AS (SELECT row_id, ts_us, missed,
             sum(CAST(missed AS INTEGER)) OVER (PARTITION BY row_id, grp ORDER BY ts_us
                 ROWS UNBOUNDED PRECEDING) AS run
      FROM m),
k AS (SELECT row_id, min(ts_us) AS miss_us FROM r
      WHERE missed AND run >= {rule.missed_in_a_row} GROUP BY row_id)
SELECT n.row_id,
  least(g.gap_us, k.miss_us, coalesce(g.last_us, n.as_us) + {gap}) AS derived_us
FROM lab n LEFT JOIN g ON g.row_id = n.row_id LEFT JOIN k ON k.row_id = n.row_id
ORDER BY n.row_id
"""


def chunk_labels(
    plan: fast.Plan,
    ev: Events,
    atom_e: np.ndarray,
    pc_: fast.PersonColumns,
    p: np.ndarray,
    as_r: np.ndarray,
    outcomes: Iterable[Outcome],
    horizon_days: int,
    observed_us: int,
    outcome_times: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Labels (float 1/0, NaN = unknown) for one chunk: the censoring rule, in one place.

    The label window of a row is ``[as_of, as_of + horizon)``, ended at the
    planned end of the agreement (``censoring.planned_end: truncate``) — both
    known at as_of. The row is unknown, whatever happened, when that window is
    empty, ends after the data cutoff ``observed_us``, or (``drop``) crosses
    the planned end. Otherwise it is 1 when the outcome happens inside the
    window no later than the first unplanned exit (``program_exit``, a
    ``transfer_out`` not followed by a ``transfer_in``), else 0: exits are
    competing events. ``outcome_times`` gives first-outcome times computed
    elsewhere (the derived loss-of-contact rule, :mod:`features.labels`);
    other outcomes use their ``consecutive`` rule when enabled, else the first
    ``positive`` event in the window. Only final versions of events count.
    """
    cfg = plan.config
    rr, e = fast._pairs(ev, p)
    n, A = len(p), plan.n_atoms
    at = atom_e[e]
    horizon_end = as_r + int(horizon_days) * DAY_US
    plan_end = pc_.end_us[p] + DAY_US
    truncate = cfg.censoring.planned_end == "truncate"
    end_r = np.minimum(horizon_end, plan_end) if truncate else horizon_end
    ts = ev.ts[e]
    win = (ts >= as_r[rr]) & (ts < end_r[rr]) & (at >= 0)
    if ev.sup is not None:
        win &= ev.sup[e] == MAX_US
    k = np.flatnonzero(win)
    rr, at, ts = rr[k], at[k], ts[k]
    cell = rr * A + at.astype(np.int64)
    first_flat = np.full(n * A, fast.I64_MAX, np.int64)
    np.minimum.at(first_flat, cell, ts)
    last_flat = np.full(n * A, fast.I64_MIN, np.int64)
    np.maximum.at(last_flat, cell, ts)
    first, last = first_flat.reshape(n, A), last_flat.reshape(n, A)
    exit_us = fast._group_min(first, plan.atoms(fast._type("program_exit")))
    out_us = fast._group_max(last, plan.atoms(fast._type("transfer_out")))
    in_us = fast._group_max(last, plan.atoms(fast._type("transfer_in")))
    out_stop = np.where(
        (out_us != fast.I64_MIN) & (out_us > np.maximum(in_us, -1)), out_us, fast.I64_MAX
    )
    stop = np.minimum.reduce([end_r, exit_us, out_stop])
    unknown = (end_r <= as_r) | (end_r > observed_us)
    if not truncate:
        unknown |= horizon_end > plan_end
    given = outcome_times or {}
    result: dict[str, np.ndarray] = {}
    for outcome in outcomes:
        rule = cfg.outcomes[outcome]
        if outcome in given:
            pos = given[outcome]
        elif rule.consecutive.enabled:
            pos = _consecutive_time(plan, rule.positive, rule.consecutive, rr, at, ts, as_r, stop)
        else:
            pos = fast._group_min(first, plan.atoms(tuple(rule.positive)))
        hit = (pos < end_r) & (pos <= stop)
        result[outcome] = np.where(unknown, np.nan, hit.astype(np.float64))
    return result


def _consecutive_time(
    plan: fast.Plan,
    positive: fast.Filters,
    rule: ConsecutiveRule,
    rr: np.ndarray,
    at: np.ndarray,
    ts: np.ndarray,
    as_r: np.ndarray,
    stop: np.ndarray,
) -> np.ndarray:
    """When ``rule.k`` consecutive bad intervals first complete (fast.I64_MAX: never).

    ``rr, at, ts`` are the window's pairs. Interval ``j`` is
    ``[as_of + j*L, as_of + (j+1)*L)``; it is bad at its first positive event
    (no later than ``stop``) or, when missing tests count, at its end if it
    ends by ``stop`` with no required event in it.
    """
    n, step = len(as_r), int(rule.interval_days) * DAY_US
    span = int((stop - as_r).max()) if n else 0
    J = max(1, -(-span // step))
    j = (ts - as_r[rr]) // step
    bad_at = np.full((n, J), fast.I64_MAX, np.int64)
    is_pos = np.isin(at, plan.atoms(positive)) & (ts <= stop[rr])
    np.minimum.at(bad_at, (rr[is_pos], j[is_pos]), ts[is_pos])
    if rule.missing_counts_as_positive:
        tested = np.zeros((n, J), bool)
        req = np.isin(at, plan.atoms(tuple(rule.required)))
        tested[rr[req], j[req]] = True
        ends = as_r[:, None] + (np.arange(J, dtype=np.int64) + 1) * step
        missing = ~tested & (ends <= stop[:, None])
        bad_at = np.where(missing, np.minimum(bad_at, ends), bad_at)
    run = np.zeros(n, np.int64)
    when = np.full(n, fast.I64_MAX, np.int64)
    for col in range(J):
        bad = bad_at[:, col] < fast.I64_MAX
        run = np.where(bad, run + 1, 0)
        hit = (run >= rule.k) & (when == fast.I64_MAX)
        when[hit] = bad_at[hit, col]
    return when


def as_int8(values: np.ndarray) -> pd.Series:
    """1.0/0.0/NaN labels as a nullable Int8 series."""
    unknown = np.isnan(values)
    arr = pd.array(np.where(unknown, 0, values).astype(np.int8), dtype="Int8")
    arr[unknown] = pd.NA
    return pd.Series(arr)


def derived_times(
    session: Session, rows: EntityRows, config: LabelConfig, outcome: Outcome, horizon_days: int
) -> np.ndarray:
    """Derived-rule outcome times for ``rows`` (row order; I64_MAX: none), on the session's SQL."""
    con = session.sql_entities(rows)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE lab AS
        SELECT row_id, person_id, as_us, as_us + {int(horizon_days) * DAY_US} AS end_us
        FROM ent_all""")
    got = con.execute(derived_query(config, outcome)).df()["derived_us"]
    return got.fillna(fast.I64_MAX).to_numpy(dtype=np.int64)


def compute_labels(
    session: Session,
    rows: EntityRows,
    config: LabelConfig,
    outcome: Outcome,
    horizon_days: int,
    observed_us: int,
) -> pd.Series:
    """Labels for ``rows`` (row order) as a nullable Int8 series (cohort not applied)."""
    given = (
        {outcome: derived_times(session, rows, config, outcome, horizon_days)}
        if config.outcomes[outcome].derived.enabled
        else {}
    )
    catalog = load_catalog()
    plan = fast.compile_plan(catalog, config)
    ev = session.events
    atom_e = lookup_codes(plan.table, ev.tc, ev.rc)
    cols = fast.PersonColumns.of(session.persons, catalog)
    parts = [
        chunk_labels(
            plan,
            ev,
            atom_e,
            cols,
            rows.pidx[sl],
            rows.as_us[sl],
            [outcome],
            horizon_days,
            observed_us,
            {o: t[sl] for o, t in given.items()},
        )[outcome]
        for sl in fast.row_chunks(ev, rows.pidx)
    ]
    return as_int8(np.concatenate(parts) if parts else np.zeros(0))


def build_labels(
    entities: pd.DataFrame,
    *,
    persons: Source,
    events: Source,
    outcome: Outcome = "relapse",
    horizon_days: int | None = None,
    config: LabelConfig | None = None,
    observed_until: pd.Timestamp | str | None = None,
    session: Session | None = None,
) -> pd.DataFrame:
    """person_id, as_of, label (1, 0, or <NA> when unknown or not in the cohort)."""
    config = config or load_label_config()
    if outcome not in config.outcomes:
        raise ValueError(f"unknown outcome {outcome!r}; choose one of {sorted(config.outcomes)}")
    horizon = horizon_days or config.horizon_days
    s = session or Session.open(persons, events)
    try:
        rows = s.rows(entities)
        observed = (
            s.observed_until_us
            if observed_until is None
            else pd.Timestamp(observed_until).value // 1000
        )
        label = compute_labels(s, rows, config, outcome, horizon, observed)
        cohort = get_historical_features(s, rows, config=config, cohort_only=True).in_cohort
    finally:
        if session is None:
            s.close()
    label[~cohort] = pd.NA
    out = entities[["person_id", "as_of"]].copy()
    out["label"] = label.set_axis(out.index)
    return out
