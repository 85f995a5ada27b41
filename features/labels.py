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

The rule itself lives in one place, :func:`features.fast.labels`; this module
adds the derived loss-of-contact rule (``outcomes.loss_of_contact.derived``,
off by default), whose first-outcome time comes from SQL window functions
(:func:`derived_query`). It looks only inside the window and is causal (a
time depends only on events before it): contact gaps are measured from as_of
and from each contact in the window, and the missed check-ins must both fall
in the window.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from features import fast
from features.catalog import load_catalog
from features.config import LabelConfig, Outcome, load_label_config
from features.engine import Source, attach, attach_sql, compute, connect, session, set_entities
from features.sql import DAY_US, MAX_US, RESULT_CODES, TYPE_CODES, filter_sql


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


def observed_until_us(con: duckdb.DuckDBPyConnection) -> int:
    """The data snapshot time: the latest recorded_at (microseconds)."""
    value = session(con).events.max_rec
    return int(value) if value is not None else 0


def as_int8(values: np.ndarray) -> pd.Series:
    """1.0/0.0/NaN labels as a nullable Int8 series."""
    unknown = np.isnan(values)
    arr = pd.array(np.where(unknown, 0, values).astype(np.int8), dtype="Int8")
    arr[unknown] = pd.NA
    return pd.Series(arr)


def derived_times(
    con: duckdb.DuckDBPyConnection, config: LabelConfig, outcome: Outcome, horizon_days: int
) -> np.ndarray:
    """Derived-rule outcome times for the session's entity rows (row order; I64_MAX: none)."""
    attach_sql(con)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE lab AS
        SELECT row_id, person_id, as_us, as_us + {int(horizon_days) * DAY_US} AS end_us
        FROM ent_all""")
    got = con.execute(derived_query(config, outcome)).df()["derived_us"]
    return got.fillna(fast.I64_MAX).to_numpy(dtype=np.int64)


def compute_labels(
    con: duckdb.DuckDBPyConnection,
    config: LabelConfig,
    outcome: Outcome,
    horizon_days: int,
    observed_us: int,
) -> pd.Series:
    """Labels for the session's entity rows (row order) as a nullable Int8 series."""
    s = session(con)
    assert s.ent_pidx is not None and s.ent_as is not None
    given = (
        {outcome: derived_times(con, config, outcome, horizon_days)}
        if config.outcomes[outcome].derived.enabled
        else {}
    )
    plan = fast.compile_plan(load_catalog(), config)
    atom_e = plan.table[s.events.tc, s.events.rc]
    cols = fast.PersonColumns.of(s.persons, load_catalog())
    parts = [
        fast.labels(
            plan,
            s.events,
            atom_e,
            cols,
            s.ent_pidx[sl],
            s.ent_as[sl],
            [outcome],
            horizon_days,
            observed_us,
            {o: t[sl] for o, t in given.items()},
        )[outcome]
        for sl in fast.row_chunks(s.events, s.ent_pidx)
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
) -> pd.DataFrame:
    """person_id, as_of, label (1, 0, or <NA> when unknown or not in the cohort)."""
    config = config or load_label_config()
    if outcome not in config.outcomes:
        raise ValueError(f"unknown outcome {outcome!r}; choose one of {sorted(config.outcomes)}")
    horizon = horizon_days or config.horizon_days
    con = connect()
    attach(con, persons, events)
    set_entities(con, entities)
    observed = (
        observed_until_us(con)
        if observed_until is None
        else pd.Timestamp(observed_until).value // 1000
    )
    label = compute_labels(con, config, outcome, horizon, observed)
    cohort = compute(con, load_catalog(), config, cohort_only=True)["_in_cohort"].to_numpy(bool)
    label[~cohort] = pd.NA
    out = entities[["person_id", "as_of"]].copy()
    out["label"] = label.set_axis(out.index)
    return out
