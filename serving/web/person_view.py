"""Data of the person page: scores, trend, drivers, plan items with their last record,
what-if inputs and the timeline — all read in one connection.

Contract: :func:`load_person` returns None for a person who does not exist or
is outside the caller's scope (the same answer for both, via
:func:`serving.queries.visible_person`). Scores, alerts and explanations are
the stored rows of the latest published run (what the list showed); the trend
is the stored history of the last :data:`TREND_DAYS` days; plan items are the
union of both outcomes' suggested items, each with the drivers that suggested
it (:func:`serving.web.reasons.suggested_plan`: signs, alerts, or the band's
protocol at 高风险 and above) and its most recent recorded status; what-if inputs are the actionable
model inputs among the person's drivers plus a few common ones
(:data:`WHAT_IF_DEFAULTS`), at most :data:`WHAT_IF_MAX`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy.engine import Connection

from features.config import OUTCOMES
from serving import queries
from serving.auth import Principal
from serving.explanations import actionable_features
from serving.web.reasons import PlanSuggestion, suggested_plan

from .listing import Since, rows_for, since_previous

TREND_DAYS = 180
TIMELINE_MAX = 80
WHAT_IF_MAX = 8
WHAT_IF_DEFAULTS = (
    "employed_now",
    "home_visits_30d",
    "counselling_30d",
    "peer_education_30d",
    "family_contacts_30d",
    "days_since_home_visit",
)

#: Every timeline entry has these keys (events lack the action ones and vice versa).
TIMELINE_KEYS: dict[str, Any] = dict.fromkeys(
    ("result", "value", "source", "by", "plan_item", "status", "agrees_with_score", "note")
)


@dataclass
class WhatIfInput:
    feature: str
    value: float
    is_flag: bool
    zh: str
    en: str


@dataclass
class PersonView:
    row: Any
    run: queries.Run | None
    previous: queries.Run | None = None
    since: Since | None = None
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    explanations: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    plan: list[PlanSuggestion] = field(default_factory=list)
    what_if: list[WhatIfInput] = field(default_factory=list)
    #: Why the person is not on the run's list: (message key, fill), or None when listed.
    not_listed: tuple[str, dict[str, Any]] | None = None


#: Events that take a person out of the daily cohort, latest first in :func:`not_listed_reason`.
LEAVING_TYPES = ("program_exit", "lost_contact", "contact_restored", "transfer_out", "transfer_in")


def not_listed_reason(
    row: Any, run: queries.Run, last: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """Why a person is not on the run's list, from their agreement and latest events.

    In order: the programme ended by an exit event (completed, violation, custody,
    …); lost contact with no contact restored since; transferred out with no
    transfer in since; the agreement's planned end passed; the agreement has not
    started; else not in the run's cohort for another reason.
    """

    def day(kind: str) -> str:
        return str(last[kind]["ts"])[:10]

    def after(a: str, b: str) -> bool:
        return a in last and (b not in last or last[a]["ts"] >= last[b]["ts"])

    if "program_exit" in last:
        result = last["program_exit"]["result"]
        return "not_listed_exit", {"date": day("program_exit"), "result": result}
    if after("lost_contact", "contact_restored"):
        return "not_listed_lost", {"date": day("lost_contact")}
    if after("transfer_out", "transfer_in"):
        return "not_listed_transferred", {"date": day("transfer_out")}
    if row.program_end is not None and str(row.program_end) <= run.as_of.isoformat():
        return "not_listed_ended", {"date": str(row.program_end)[:10]}
    if row.program_start is not None and str(row.program_start) > run.as_of.isoformat():
        return "not_listed_not_started", {"date": str(row.program_start)[:10]}
    return "not_listed_other", {"as_of": run.as_of.isoformat()}


def load_person(
    conn: Connection, who: Principal, person_id: str, model_features: Iterable[str]
) -> PersonView | None:
    row = queries.visible_person(conn, who, person_id)
    if row is None:
        return None
    run = queries.run_for(conn, None)
    view = PersonView(row, run)
    view.timeline = [
        {**TIMELINE_KEYS, **e} for e in queries.timeline(conn, person_id, TIMELINE_MAX)
    ]
    if run is None:
        return view
    view.previous = queries.previous_run(conn, run)
    view.scores = {s["outcome"]: s for s in queries.person_scores(conn, run.id, person_id)}
    if not view.scores:
        last = queries.last_events(conn, person_id, LEAVING_TYPES, run.as_of)
        view.not_listed = not_listed_reason(row, run, last)
    view.alerts = queries.person_alerts(conn, run.id, person_id)
    if view.scores:
        rows = rows_for(conn, run.id, [(person_id, view.scores)])
        view.since = since_previous(conn, run, view.previous, rows)
    for outcome in OUTCOMES:
        body = queries.explanation(conn, run.id, person_id, outcome)
        if body is not None:
            view.explanations[outcome] = orjson.loads(body)
    view.history = queries.history(conn, person_id, None, run.as_of - timedelta(days=TREND_DAYS))
    actions = queries.action_rows(conn, person_id)
    view.plan = plan_rows(view.explanations, view.alerts, actions)
    vector = queries.feature_vector(conn, run.id, person_id)
    if vector is not None:
        view.what_if = what_if_inputs(view.explanations, vector, set(model_features))
    return view


def plan_rows(
    explanations: dict[str, dict[str, Any]],
    alerts: list[dict[str, Any]],
    actions: list[dict[str, Any]],
) -> list[PlanSuggestion]:
    """The suggested items (:func:`serving.web.reasons.suggested_plan`) with their last record."""
    drivers = {o: b["drivers"] for o, b in explanations.items()}
    bands = {o: b["band"] for o, b in explanations.items()}
    rows = suggested_plan(drivers, bands, alerts)
    by_id = {r.id: r for r in rows}
    for a in actions:  # newest first
        found = by_id.get(a["plan_item"] or "")
        if a["kind"] == "plan_item" and found is not None and found.last is None:
            found.last = a
    return rows


def what_if_inputs(
    explanations: dict[str, dict[str, Any]],
    vector: tuple[list[str], bytes],
    model_features: set[str],
) -> list[WhatIfInput]:
    names, blob = vector
    values = dict(zip(names, np.frombuffer(blob, dtype=np.float64).tolist(), strict=True))
    allowed = actionable_features()
    wanted: list[str] = []
    for body in explanations.values():
        wanted += [d["feature"] for d in body["drivers"] if d["actionable"]]
    wanted += list(WHAT_IF_DEFAULTS)
    out: list[WhatIfInput] = []
    for name in dict.fromkeys(wanted):
        f = allowed.get(name)
        usable = f is not None and name in values and f.format != "percent"
        if not usable or (model_features and name not in model_features):
            continue
        assert f is not None
        value = values[name]
        if not np.isfinite(value) or value < 0:
            continue
        out.append(WhatIfInput(name, value, f.format == "flag", _label(f, "zh"), _label(f, "en")))
        if len(out) == WHAT_IF_MAX:
            break
    return out


def _label(f: Any, lang: str) -> str:
    """A feature's words as a question about its number (the input field holds the number):
    "已多少天没有家访", "how many home visits in the last 30 days"."""
    if f.format == "flag":
        return str(f.zh if lang == "zh" else f.en)
    text = str(f.zh if lang == "zh" else f.en)
    return " ".join(text.replace("{value}", "多少" if lang == "zh" else "how many").split())
