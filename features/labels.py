"""Labels for both outcomes over a horizon, with censoring (DESIGN §3).

Contract: a label for (person, as_of) is built in hindsight from events with
``as_of <= ts < as_of + horizon`` (final versions: corrections applied), the
person's planned ``program_end`` and the data snapshot time ``observed_until``.
It is 1 when an outcome event falls inside the window *while the person is
observed*; 0 when the whole window was observed without one; unknown (null)
otherwise:

* observation stops at the first ``program_exit`` in the window, at the
  planned end of the agreement, or at a ``transfer_out`` not followed by a
  ``transfer_in`` inside the window. A window cut short without an outcome is
  censored: unknown (``censoring.unknown_when_censored``; 0 if turned off);
* a window that ends after ``observed_until`` (default: the latest
  ``recorded_at`` in the data) without an outcome is unknown — it has not
  happened yet;
* :func:`build_labels` also leaves rows outside the cohort at as_of unknown
  (cohort membership uses knowledge time, like features).

The derived loss-of-contact rule (``outcomes.loss_of_contact.derived``, off by
default) looks only inside the window: contact gaps are measured from as_of
and from each contact in the window, and the missed check-ins must both fall
in the window. This keeps the contract exact: no event outside the window
changes a label.

Engine: the numpy engine (:func:`features.fast.labels`, same pairs and atoms
as the features) computes recorded-outcome labels; an outcome with the
derived rule enabled uses the SQL of :func:`label_query` (window functions
over the contacts in the window), which is also the reference the
cross-check test compares the numpy labels with.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from features import fast
from features.catalog import load_catalog
from features.config import LabelConfig, Outcome, load_label_config
from features.engine import Source, attach, attach_sql, compute, connect, session, set_entities
from features.sql import DAY_US, MAX_US, RESULT_CODES, TYPE_CODES, filter_sql, type_is


def _derived_sql(config: LabelConfig, outcome: Outcome) -> tuple[str, str, str]:
    """CTEs, joins and the expression for the derived loss-of-contact time (or NULL)."""
    rule = config.outcomes[outcome].derived
    if not rule.enabled:
        return "", "", "NULL"
    gap = rule.no_contact_days * DAY_US
    check_in = TYPE_CODES["check_in"]
    attended = f"(tc = {check_in} AND rc = {RESULT_CODES['attended']})"
    missed = f"(tc = {check_in} AND rc = {RESULT_CODES['missed']})"
    ctes = f""",
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
      WHERE missed AND run >= {rule.missed_in_a_row} GROUP BY row_id)"""
    joins = "LEFT JOIN g ON g.row_id = n.row_id LEFT JOIN k ON k.row_id = n.row_id"
    expr = f"least(g.gap_us, k.miss_us, coalesce(g.last_us, n.as_us) + {gap})"
    return ctes, joins, expr


def label_query(config: LabelConfig, outcome: Outcome, observed_us: int) -> str:
    """SQL over ``lab(row_id, person_id, as_us, end_us)``: row_id, label (null = unknown)."""
    positive = filter_sql(config.outcomes[outcome].positive)
    ctes, joins, derived = _derived_sql(config, outcome)
    censored = "NULL" if config.censoring.unknown_when_censored else "0"
    plan_end = f"(epoch_us(CAST(p.program_end AS TIMESTAMP)) + {DAY_US})"
    return f"""
WITH w AS (
  SELECT n.row_id, v.ts_us, v.tc, v.rc
  FROM lab n JOIN ev v ON v.person_id = n.person_id
  WHERE v.ts_us >= n.as_us AND v.ts_us < n.end_us AND v.sup_us = {MAX_US}
), a AS (
  SELECT row_id,
    min(ts_us) FILTER (WHERE {positive}) AS pos_us,
    min(ts_us) FILTER (WHERE {type_is("program_exit")}) AS exit_us,
    max(ts_us) FILTER (WHERE {type_is("transfer_out")}) AS out_us,
    max(ts_us) FILTER (WHERE {type_is("transfer_in")}) AS in_us
  FROM w GROUP BY row_id
){ctes},
s AS (
  SELECT n.row_id, n.end_us, a.pos_us,
    CASE WHEN {derived} <= {observed_us} THEN {derived} END AS derived_us,
    least(n.end_us, coalesce(a.exit_us, {MAX_US}), {plan_end},
          CASE WHEN a.out_us > coalesce(a.in_us, -1) THEN a.out_us ELSE {MAX_US} END) AS stop_us
  FROM lab n JOIN per p ON p.person_id = n.person_id LEFT JOIN a ON a.row_id = n.row_id
  {joins}
)
SELECT row_id,
  CAST(CASE WHEN least(pos_us, derived_us) <= stop_us THEN 1
       WHEN stop_us < end_us THEN {censored}
       WHEN end_us > {observed_us} THEN NULL
       ELSE 0 END AS TINYINT) AS label
FROM s ORDER BY row_id
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


def compute_labels(
    con: duckdb.DuckDBPyConnection,
    config: LabelConfig,
    outcome: Outcome,
    horizon_days: int,
    observed_us: int,
    engine: str = "fast",
) -> pd.Series:
    """Labels for the session's entity rows (row order) as a nullable Int8 series."""
    if engine == "fast" and not config.outcomes[outcome].derived.enabled:
        s = session(con)
        assert s.ent_pidx is not None and s.ent_as is not None
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
            )[outcome]
            for sl in fast.row_chunks(s.events, s.ent_pidx)
        ]
        return as_int8(np.concatenate(parts) if parts else np.zeros(0))
    return compute_labels_sql(con, config, outcome, horizon_days, observed_us)


def compute_labels_sql(
    con: duckdb.DuckDBPyConnection,
    config: LabelConfig,
    outcome: Outcome,
    horizon_days: int,
    observed_us: int,
) -> pd.Series:
    """Labels from :func:`label_query` (derived rule, and the reference)."""
    attach_sql(con)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE lab AS
        SELECT row_id, person_id, as_us, as_us + {int(horizon_days) * DAY_US} AS end_us
        FROM ent_all""")
    frame = con.execute(label_query(config, outcome, observed_us)).df()
    return frame["label"].astype("Int8").reset_index(drop=True)


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
