"""Rule-based alerts and cohort flags, computed beside the scores (no model needed).

Contract: :func:`compute_alerts` takes the persons being scored, the events
(canonical frames; it keeps the versions visible at ``as_of`` by the features'
own rule, :func:`features.columnar.visible_at`: recorded before as_of, not yet
corrected) and :class:`AlertRules`, and
returns one row per (person, alert): ``person_id, kind, since, days, value``
plus the zh-CN/en message. :func:`cohort_flags` returns the 一批一策 cohort
bits per person. Kinds and their bit in ``scores.alert_mask``:

* ``overdue_check_in`` (1): no attended check-in for longer than the schedule's
  interval (every 14 days in months 1–6, 30 to month 12, 61 in year 2, 91 in
  year 3, counted from the programme start) plus ``grace_days``;
* ``overdue_test`` (2): no drug test for longer than the testing interval
  (30 days in year 1, 61 in year 2, 91 in year 3) plus ``grace_days``;
* ``positive_test`` (4) / ``refused_test`` (8): such a result *recorded* in the
  last ``recent_days``;
* ``medicine_purchase`` (16): a controlled-medicine purchase recorded in the
  last ``recent_days``;
* ``transfer_no_worker`` (32): the latest transfer in has had no worker contact
  since (home visit, counselling, attended check-in, peer education), or the
  person's worker_id is an "unassigned" marker.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from features.columnar import visible_at

ALERT_BITS: dict[str, int] = {
    "overdue_check_in": 1,
    "overdue_test": 2,
    "positive_test": 4,
    "refused_test": 8,
    "medicine_purchase": 16,
    "transfer_no_worker": 32,
}
COHORT_BITS: dict[str, int] = {
    "agreement_ending": 1,
    "transferred_in_recently": 2,
    "first_90_days": 4,
}
ALERT_WORDS: dict[str, tuple[str, str]] = {
    "overdue_check_in": ("报到已逾期{days}天", "check-in overdue by {days} days"),
    "overdue_test": ("检测已逾期{days}天", "drug test overdue by {days} days"),
    "positive_test": ("新记录：{date}检测阳性", "new: positive test on {date}"),
    "refused_test": ("新记录：{date}拒绝检测", "new: test refused on {date}"),
    "medicine_purchase": (
        "新记录：{date}购买特殊药品{value}单位",
        "new: {value} units of controlled medicine bought on {date}",
    ),
    "transfer_no_worker": (
        "{date}跨区域转入，尚无社工接触",
        "transferred in on {date}, no worker contact yet",
    ),
}


class AlertRules(BaseModel):
    """Thresholds of the alert rules (documented in docs/serving.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grace_days: int = 7
    recent_days: int = 7
    agreement_ending_days: int = 60
    transferred_in_days: int = 30
    first_days: int = 90
    unassigned_workers: tuple[str, ...] = ("", "unassigned", "none", "pending", "-")


_SQL = """
WITH p AS (
  SELECT person_id, worker_id,
         date_diff('day', CAST(program_start AS DATE), CAST($as_of AS DATE)) AS served
  FROM persons
), e AS (
  SELECT person_id, type, result, CAST(ts AS TIMESTAMP) AS ts,
         CAST(recorded_at AS TIMESTAMP) AS rec, value
  FROM events WHERE recorded_at < CAST($as_of AS TIMESTAMP)
), last AS (
  SELECT person_id,
    max(ts) FILTER (WHERE type = 'check_in' AND result = 'attended') AS last_check_in,
    max(ts) FILTER (WHERE type IN ('urine_test', 'hair_test')) AS last_test,
    max(ts) FILTER (WHERE type = 'transfer_in') AS last_transfer_in
  FROM e GROUP BY person_id
), contact AS (
  SELECT e.person_id, max(e.ts) AS last_contact FROM e
  WHERE e.type IN ('home_visit', 'counselling', 'peer_education')
     OR (e.type = 'check_in' AND e.result = 'attended')
  GROUP BY e.person_id
)
SELECT p.person_id, p.worker_id, p.served, l.last_check_in, l.last_test,
       l.last_transfer_in, c.last_contact
FROM p LEFT JOIN last l USING (person_id) LEFT JOIN contact c USING (person_id)
"""

_RECENT = """
SELECT person_id, type, result, CAST(ts AS TIMESTAMP) AS ts, value FROM events
WHERE recorded_at < CAST($as_of AS TIMESTAMP) AND recorded_at >= CAST($since AS TIMESTAMP)
  AND (type = 'controlled_medicine_purchase'
       OR (type IN ('urine_test', 'hair_test') AND result IN ('positive', 'refused')))
ORDER BY person_id, ts
"""


def _interval(served: np.ndarray, months_1_6: float, months_7_12: float, y2: float, y3: float):
    return np.select(
        [served < 183, served < 365, served < 730], [months_1_6, months_7_12, y2], default=y3
    )


def compute_alerts(
    persons: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp, rules: AlertRules
) -> pd.DataFrame:
    """Alerts at ``as_of`` for ``persons`` (person_id, worker_id, program_start)."""
    events = visible_at(events, as_of)  # corrections honoured exactly as the features do
    con = duckdb.connect(":memory:")
    con.register("persons", persons[["person_id", "worker_id", "program_start"]])
    con.register("events", events[["person_id", "type", "result", "ts", "recorded_at", "value"]])
    day = as_of.to_pydatetime()
    state = con.execute(_SQL, {"as_of": day}).df()
    recent = con.execute(
        _RECENT, {"as_of": day, "since": (as_of - pd.Timedelta(days=rules.recent_days))}
    ).df()
    con.close()
    parts: list[pd.DataFrame] = []
    served = state["served"].to_numpy()
    start = as_of - pd.to_timedelta(served, unit="D")
    for kind, col, interval in (
        ("overdue_check_in", "last_check_in", _interval(served, 14, 30, 61, 91)),
        ("overdue_test", "last_test", _interval(served, 30, 30, 61, 91)),
    ):
        last = pd.to_datetime(state[col]).fillna(pd.Series(start, index=state.index))
        due = last.dt.normalize() + pd.to_timedelta(interval + rules.grace_days, unit="D")
        days = (as_of - due).dt.days.to_numpy()
        hit = days > 0
        parts.append(_rows(state.loc[hit, "person_id"], kind, due[hit], days=days[hit]))
    for kind, mask in (
        ("positive_test", recent["result"] == "positive"),
        ("refused_test", recent["result"] == "refused"),
        ("medicine_purchase", recent["type"] == "controlled_medicine_purchase"),
    ):
        latest = recent[mask.to_numpy()].drop_duplicates("person_id", keep="last")
        parts.append(_rows(latest["person_id"], kind, latest["ts"], value=latest["value"]))
    moved = state["last_transfer_in"].notna()
    no_contact = state["last_contact"].isna() | (state["last_contact"] <= state["last_transfer_in"])
    unassigned = (
        state["worker_id"].fillna("").str.strip().str.lower().isin(rules.unassigned_workers)
    )
    hit = (moved & no_contact) | unassigned
    parts.append(
        _rows(state.loc[hit, "person_id"], "transfer_no_worker", state.loc[hit, "last_transfer_in"])
    )
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if parts else _rows([], "", [])
    return out if len(out) else _rows(pd.Series([], dtype=str), "", pd.Series([]))


def _rows(person_ids, kind: str, since, days=None, value=None) -> pd.DataFrame:
    n = len(person_ids)
    return pd.DataFrame(
        {
            "person_id": np.asarray(person_ids, dtype=object),
            "kind": kind,
            "since": pd.to_datetime(pd.Series(np.asarray(since)), errors="coerce").to_numpy()
            if n
            else np.array([], dtype="datetime64[us]"),
            "days": np.asarray(days, dtype=float) if days is not None else np.full(n, np.nan),
            "value": np.asarray(value, dtype=float) if value is not None else np.full(n, np.nan),
        }
    )


def alert_message(kind: str, since: pd.Timestamp | None, days: float, value: float) -> dict:
    """The zh-CN/en message of one alert."""
    zh, en = ALERT_WORDS[kind]
    fill = {
        "days": "" if np.isnan(days) else int(days),
        "date": "" if since is None or pd.isna(since) else since.strftime("%Y-%m-%d"),
        "value": "" if np.isnan(value) else f"{value:g}",
    }
    return {"kind": kind, "zh": zh.format(**fill), "en": en.format(**fill)}


def cohort_flags(
    persons: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp, rules: AlertRules
) -> pd.Series:
    """Cohort bits per person_id (index): agreement ending, transferred in, first days."""
    end = pd.to_datetime(persons["program_end"])
    start = pd.to_datetime(persons["program_start"])
    mask = np.zeros(len(persons), dtype=np.int64)
    mask |= np.where(
        (end - as_of).dt.days.between(0, rules.agreement_ending_days),
        COHORT_BITS["agreement_ending"],
        0,
    )
    mask |= np.where((as_of - start).dt.days < rules.first_days, COHORT_BITS["first_90_days"], 0)
    since = as_of - pd.Timedelta(days=rules.transferred_in_days)
    events = visible_at(events, as_of)
    moved = events.loc[
        (events["type"] == "transfer_in")
        & (events["ts"] >= since)
        & (events["recorded_at"] < as_of),
        "person_id",
    ].unique()
    mask |= np.where(
        persons["person_id"].isin(moved).to_numpy(), COHORT_BITS["transferred_in_recently"], 0
    )
    return pd.Series(mask, index=persons["person_id"].to_numpy())
