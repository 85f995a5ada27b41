"""Duty schedules: when each person's check-ins, tests and home visits fall due.

Contract. The schedules are the feature catalog's ``schedules:`` (one place; the
catalog's ``overdue`` alerts name theirs, so the alerts and the due lists can never
disagree). :func:`interval_days` is the one rule for the interval in force: the
schedule's ``every_days`` entry for the programme period the person is in *at the day
asked about* — months 1–6 (days 0–182), months 7–12 (183–364), year 2 (365–729),
year 3 and later (730+). The engine's overdue alerts
(:mod:`features.engine.alert_rules`) call it too.

:func:`due_list` answers, for the persons given (the caller passes the cohort it
supervises) and a day ``as_of`` (midnight: what was known before it), one row per
(person, duty) that is due within ``horizon_days`` or overdue:

* ``last_done`` — the latest ``ts`` of the schedule's events visible at as_of (the
  time rule ``recorded_at < as_of``; a version superseded by a correction known
  before as_of no longer counts, as in the engine); NaT when never done;
* ``due`` — ``last_done`` (or, never done, the programme start) as a day, plus the
  interval; a due day after the planned end of the agreement is not listed;
* ``days_late`` = as_of − due in whole days (≤ 0: not yet late);
* ``status`` — ``due`` (due within ``horizon_days`` from as_of: 0 ≥ days_late >
  −horizon), ``overdue`` (1 .. ``grace_days`` days late) or ``escalated`` (more
  than ``grace_days`` late: exactly when the catalog's overdue alert of that
  schedule is raised, and ``days_late − grace_days`` is that alert's day count).

:func:`escalation` counts the rows per district, town and worker for the town view.
Everything is pandas in, pandas out; nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from features.catalog import Catalog, ScheduleSpec, load_catalog

#: First programme day of months 7–12, year 2 and year 3 (the schedule's periods).
PERIOD_STARTS = (183, 365, 730)
#: How far ahead "due this week" looks, in days (as_of .. as_of + 6).
WEEK_DAYS = 7
STATUSES = ("escalated", "overdue", "due")
DUE_COLUMNS = (
    "person_id",
    "district",
    "town",
    "worker_id",
    "duty",
    "zh",
    "en",
    "last_done",
    "due",
    "days_late",
    "status",
)


def interval_days(every_days: Sequence[int], served_days: np.ndarray | int) -> np.ndarray:
    """The schedule's interval in force after ``served_days`` days in the programme."""
    served = np.asarray(served_days)
    a, b, c, d = every_days
    return np.asarray(
        np.select(
            [served < PERIOD_STARTS[0], served < PERIOD_STARTS[1], served < PERIOD_STARTS[2]],
            [a, b, c],
            d,
        ),
        dtype=np.int64,
    )


def visible_events(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Events known before ``as_of`` with corrections applied: the engine's own rule
    (:func:`features.engine.records.visible_at`; an empty ``recorded_at`` is ``ts``)."""
    from features.engine.records import visible_at  # the engine imports this module

    recorded = events["recorded_at"].fillna(events["ts"])
    return visible_at(events.assign(recorded_at=recorded), as_of)


def _last_done(seen: pd.DataFrame, schedule: ScheduleSpec) -> pd.Series:
    f = schedule.events
    hit = seen["type"].isin(f.types)
    result = seen["result"].astype("object")
    if f.results:
        hit &= result.isin(f.results)
    if f.not_results:
        hit &= ~result.isin(f.not_results)
    return seen.loc[hit].groupby("person_id")["ts"].max()


def _day(values: pd.Series) -> np.ndarray:
    return np.asarray(
        pd.to_datetime(values).to_numpy(dtype="datetime64[D]").astype(np.int64), np.int64
    )


def due_list(
    persons: pd.DataFrame,
    events: pd.DataFrame,
    as_of: date | pd.Timestamp,
    *,
    catalog: Catalog | None = None,
    horizon_days: int = WEEK_DAYS,
    schedules: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every duty of ``persons`` due within ``horizon_days`` of ``as_of`` or overdue.

    ``persons`` and ``events`` are in the contract's canonical form (the persons
    are the ones to list: the caller's cohort). Rows are ordered most urgent first:
    escalated, overdue, due; then the most days late; then person and duty.
    """
    cat = catalog or load_catalog()
    grace = cat.alert_settings.grace_days
    at = pd.Timestamp(as_of).normalize()
    as_day = int(np.datetime64(at.date(), "D").astype(np.int64))
    seen = visible_events(events, at)
    wanted = [s for s in cat.schedules if schedules is None or s.name in schedules]
    start_day = _day(persons["program_start"])
    end_day = _day(persons["program_end"])
    interval_of = {s.name: interval_days(s.every_days, as_day - start_day) for s in wanted}
    parts = []
    for schedule in wanted:
        done = _last_done(seen, schedule)
        last = pd.Series(
            pd.to_datetime(done.reindex(persons["person_id"].to_numpy())).to_numpy(
                dtype="datetime64[us]"
            )
        )
        last_day = np.where(last.isna(), start_day, _day(last.fillna(at)))
        due_day = last_day + interval_of[schedule.name]
        late = as_day - due_day
        keep = (late > -horizon_days) & (due_day <= end_day)
        status = np.select([late > grace, late > 0], ["escalated", "overdue"], "due")
        part = pd.DataFrame(
            {
                "person_id": persons["person_id"].to_numpy(),
                "district": persons["district"].to_numpy(),
                "town": persons["town"].to_numpy(),
                "worker_id": persons["worker_id"].to_numpy(),
                "duty": schedule.name,
                "zh": schedule.zh,
                "en": schedule.en,
                "last_done": last.to_numpy(),
                "due": due_day.astype("datetime64[D]"),
                "days_late": late.astype(np.int64),
                "status": status,
            }
        )
        parts.append(part.loc[keep])
    if not parts:
        return pd.DataFrame({c: [] for c in DUE_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    out["due"] = out["due"].astype("datetime64[us]")
    rank = out["status"].map({s: i for i, s in enumerate(STATUSES)})
    order = np.lexsort(
        (out["duty"].to_numpy(), out["person_id"].to_numpy(), -out["days_late"], rank)
    )
    ordered: pd.DataFrame = out.iloc[order].reset_index(drop=True)
    return ordered.loc[:, list(DUE_COLUMNS)]


def escalation(due: pd.DataFrame) -> pd.DataFrame:
    """Per district, town and worker: how many duties are due, overdue and escalated."""
    keys = ["district", "town", "worker_id"]
    if due.empty:
        return pd.DataFrame(columns=[*keys, *STATUSES])
    counts = due.groupby([*keys, "status"]).size().unstack("status", fill_value=0)
    counts = counts.reindex(columns=list(STATUSES), fill_value=0).reset_index()
    counts.columns.name = None
    ordered: pd.DataFrame = counts.sort_values(
        ["escalated", "overdue", *keys], ascending=[False, False, True, True, True]
    )
    return ordered.reset_index(drop=True)
