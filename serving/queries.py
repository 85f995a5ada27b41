"""Read-side queries of the API: runs, scoped lists, persons, history, timeline.

Contract: small functions on an open connection, each returning plain Python
(or the pre-serialised JSON text the scoring job stored). Scope is applied in
SQL with :meth:`serving.auth.Principal.scope_filter`; a person outside the
caller's scope is reported exactly like a missing one (:func:`visible_person`
returns None for both). No pandas here: these run on the request path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from features.config import load_label_config
from features.store import events, persons
from serving.auth import Principal
from serving.bands import BAND_CODES
from serving.db import actions, alerts, explanations, feature_rows, score_runs, scores
from serving.flags import ALERT_BITS, COHORT_BITS


@dataclass(frozen=True)
class Run:
    id: int
    as_of: date
    feature_names: str | None = None
    #: the label window (days) each outcome's champion was trained for, when recorded
    horizon_days: tuple[int, ...] = ()


def run_horizons(models_json: str | None) -> tuple[int, ...]:
    """The distinct recorded horizons of a run's ``models`` column, sorted."""
    models = orjson.loads(models_json) if models_json else {}
    found = {int(m["horizon_days"]) for m in models.values() if m.get("horizon_days")}
    return tuple(sorted(found))


def horizon_text(run: Run | None) -> str:
    """What "{h}" reads on the pages: the run's horizon(s) in days, e.g. "90" or "60/90";
    the district's label configuration when the run recorded none."""
    if run is not None and run.horizon_days:
        return "/".join(str(h) for h in run.horizon_days)
    return str(load_label_config().horizon_days)


_RUN_TTL = 1.0
_runs: dict[tuple[str, date | None], tuple[Run | None, float]] = {}


def run_for(conn: Connection, day: date | None) -> Run | None:
    """The published run of ``day``, or the latest published run when day is None.

    Cached for a second per database: runs change once a day, lists are read
    thousands of times a second, and a new run is visible within the second.
    """
    key = (str(conn.engine.url), day)
    hit = _runs.get(key)
    now = time.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    q = sa.select(score_runs.c.id, score_runs.c.as_of, score_runs.c.models).where(
        score_runs.c.status == "published"
    )
    q = q.where(score_runs.c.as_of == day) if day else q
    row = conn.execute(q.order_by(score_runs.c.as_of.desc()).limit(1)).first()
    run = Run(row.id, row.as_of, horizon_days=run_horizons(row.models)) if row else None
    if len(_runs) > 1000:
        _runs.clear()
    _runs[key] = (run, now + _RUN_TTL)
    return run


def forget_runs() -> None:
    """Drop the run cache (after publishing in the same process)."""
    _runs.clear()


def visible_person(conn: Connection, who: Principal, person_id: str) -> Any | None:
    """The person's row if it exists and is in scope, else None (the same for both)."""
    if not who.reads_persons:
        return None
    row = conn.execute(sa.select(persons).where(persons.c.person_id == person_id)).first()
    if row is None or not who.sees(row.worker_id, row.district, row.town):
        return None
    return row


def _list_where(
    run_id: int,
    outcome: str,
    scope: sa.ColumnElement[bool],
    bands: Sequence[str] | None,
    alert: str | None,
    cohort: str | None,
) -> list[sa.ColumnElement[bool]]:
    where = [scores.c.run_id == run_id, scores.c.outcome == outcome, scope]
    if bands:
        where.append(scores.c.band.in_([BAND_CODES[b] for b in bands]))
    if alert == "any":
        where.append(scores.c.alert_mask != 0)
    elif alert:
        where.append(scores.c.alert_mask.op("&")(ALERT_BITS[alert]) != 0)
    if cohort:
        where.append(scores.c.cohort_mask.op("&")(COHORT_BITS[cohort]) != 0)
    return where


def ranked_items(
    conn: Connection,
    run_id: int,
    outcome: str,
    scope: sa.ColumnElement[bool],
    rank: str,
    *,
    bands: Sequence[str] | None = None,
    alert: str | None = None,
    cohort: str | None = None,
) -> list[tuple[int, str]]:
    """Every matching (rank, stored list item) ordered by ``rank`` (the stored
    item carries the caseload and town ranks only; the district rank is a column)."""
    where = _list_where(run_id, outcome, scope, bands, alert, cohort)
    rows = conn.execute(
        sa.select(scores.c[rank], scores.c.item)
        .where(*where)
        .order_by(scores.c[rank], scores.c.person_id)
    ).all()
    return [(int(r[0]), r[1]) for r in rows]


def person_scores(conn: Connection, run_id: int, person_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(scores.c.item)
        .where(scores.c.run_id == run_id, scores.c.person_id == person_id)
        .order_by(scores.c.outcome.desc())
    ).scalars()
    return [orjson.loads(r) for r in rows]


def person_alerts(conn: Connection, run_id: int, person_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(alerts.c.since, alerts.c.body)
        .where(alerts.c.run_id == run_id, alerts.c.person_id == person_id)
        .order_by(alerts.c.kind)
    )
    return [{**orjson.loads(r.body), "since": r.since} for r in rows]


def explanation(conn: Connection, run_id: int, person_id: str, outcome: str) -> str | None:
    return conn.execute(
        sa.select(explanations.c.body).where(
            explanations.c.run_id == run_id,
            explanations.c.person_id == person_id,
            explanations.c.outcome == outcome,
        )
    ).scalar()


def history(
    conn: Connection, person_id: str, outcome: str | None, since: date | None
) -> list[dict[str, Any]]:
    q = (
        sa.select(
            score_runs.c.as_of,
            scores.c.run_id,
            scores.c.outcome,
            scores.c.p,
            scores.c.band,
            scores.c.rank_caseload,
            scores.c.model_version,
        )
        .select_from(scores.join(score_runs, score_runs.c.id == scores.c.run_id))
        .where(scores.c.person_id == person_id, score_runs.c.status == "published")
    )
    if outcome:
        q = q.where(scores.c.outcome == outcome)
    if since:
        q = q.where(score_runs.c.as_of >= since)
    rows = conn.execute(q.order_by(score_runs.c.as_of, scores.c.outcome)).mappings()
    return [dict(r) for r in rows]


def timeline(conn: Connection, person_id: str, limit: int) -> list[dict[str, Any]]:
    """Events and recorded actions, newest first."""
    ev = conn.execute(
        sa.select(events)
        .where(events.c.person_id == person_id)
        .order_by(events.c.ts.desc())
        .limit(limit)
    ).mappings()
    items: list[dict[str, Any]] = [
        {
            "id": r["event_id"],
            "at": r["ts"],
            "kind": "event",
            "type": r["type"],
            "result": r["result"],
            "value": r["value"],
            "source": r["source"],
            "recorded_at": r["recorded_at"],
        }
        for r in ev
    ]
    for a in action_rows(conn, person_id, limit):
        items.append(
            {
                "id": f"action-{a['id']}",
                "at": a["at"],
                "kind": "action",
                "type": a["kind"],
                "by": a["by"],
                "plan_item": a["plan_item"],
                "status": a["status"],
                "agrees_with_score": a["agrees_with_score"],
                "note": a["note"],
            }
        )
    items.sort(key=lambda i: (i["at"], i["id"]), reverse=True)
    return items[:limit]


def action_rows(conn: Connection, person_id: str, limit: int = 200) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(actions)
        .where(actions.c.person_id == person_id)
        .order_by(actions.c.at.desc(), actions.c.id.desc())
        .limit(limit)
    ).mappings()
    return [{**r, "by": r["username"]} for r in rows]


def feature_vector(conn: Connection, run_id: int, person_id: str) -> tuple[list[str], bytes] | None:
    row = conn.execute(
        sa.select(score_runs.c.feature_names, feature_rows.c.vector)
        .select_from(feature_rows.join(score_runs, score_runs.c.id == feature_rows.c.run_id))
        .where(feature_rows.c.run_id == run_id, feature_rows.c.person_id == person_id)
    ).first()
    return (orjson.loads(row.feature_names), row.vector) if row else None


def explanations_of(
    conn: Connection, run_id: int, person_ids: Sequence[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Stored explanation bodies of several persons, by (person_id, outcome)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for lo in range(0, len(person_ids), 500):
        rows = conn.execute(
            sa.select(explanations.c.person_id, explanations.c.outcome, explanations.c.body).where(
                explanations.c.run_id == run_id,
                explanations.c.person_id.in_(list(person_ids[lo : lo + 500])),
            )
        )
        for pid, outcome, body in rows:
            out[(pid, outcome)] = orjson.loads(body)
    return out


def previous_run(conn: Connection, run: Run) -> Run | None:
    """The published run before ``run`` (what "较上次" compares with), or None."""
    row = conn.execute(
        sa.select(score_runs.c.id, score_runs.c.as_of)
        .where(score_runs.c.status == "published", score_runs.c.as_of < run.as_of)
        .order_by(score_runs.c.as_of.desc())
        .limit(1)
    ).first()
    return Run(row.id, row.as_of) if row else None


def last_events(
    conn: Connection, person_id: str, types: Sequence[str], before: date
) -> dict[str, dict[str, Any]]:
    """The person's latest event of each of ``types`` that happened before ``before``."""
    rows = conn.execute(
        sa.select(events.c.type, events.c.ts, events.c.result)
        .where(
            events.c.person_id == person_id,
            events.c.type.in_(list(types)),
            events.c.ts < datetime.combine(before, clock()),
        )
        .order_by(events.c.ts)
    ).mappings()
    return {r["type"]: dict(r) for r in rows}


def alert_kinds(conn: Connection, run_id: int, person_ids: Sequence[str]) -> dict[str, set[str]]:
    """The alert kinds each person had in a run (to tell which alerts are new since)."""
    out: dict[str, set[str]] = {}
    for lo in range(0, len(person_ids), 500):
        rows = conn.execute(
            sa.select(alerts.c.person_id, alerts.c.kind).where(
                alerts.c.run_id == run_id, alerts.c.person_id.in_(list(person_ids[lo : lo + 500]))
            )
        )
        for pid, kind in rows:
            out.setdefault(pid, set()).add(kind)
    return out


def events_recorded_since(
    conn: Connection, person_ids: Sequence[str], since: date
) -> dict[str, int]:
    """How many events of each person were recorded on or after ``since`` (not in its scores)."""
    out: dict[str, int] = {}
    start = datetime.combine(since, clock())
    for lo in range(0, len(person_ids), 500):
        rows = conn.execute(
            sa.select(events.c.person_id, sa.func.count())
            .where(
                events.c.person_id.in_(list(person_ids[lo : lo + 500])),
                events.c.recorded_at >= start,
            )
            .group_by(events.c.person_id)
        )
        for pid, n in rows:
            out[pid] = int(n)
    return out


def last_plan_actions(
    conn: Connection, person_ids: Sequence[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Each (person, plan item)'s most recent recorded plan-item action."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for lo in range(0, len(person_ids), 500):
        rows = conn.execute(
            sa.select(actions)
            .where(
                actions.c.person_id.in_(list(person_ids[lo : lo + 500])),
                actions.c.kind == "plan_item",
            )
            .order_by(actions.c.at, actions.c.id)
        ).mappings()
        for r in rows:
            out[(r["person_id"], r["plan_item"] or "")] = {**r, "by": r["username"]}
    return out
