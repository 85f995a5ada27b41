"""Data of the person page: scores, trend, drivers, plan items with their last record,
what-if inputs and the timeline — all read in one connection.

Contract: :func:`load_person` returns None for a person who does not exist or
is outside the caller's scope (the same answer for both, via
:func:`serving.queries.visible_person`). Scores, alerts and explanations are
the stored rows of the latest published run (what the list showed); the trend
is the stored history of the last :data:`TREND_DAYS` days; plan items are the
union of both outcomes' suggested items, each with the drivers that suggested
it (:func:`serving.reasons.suggested_plan`: signs, alerts, or the band's
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

from serving import queries
from serving.auth import Principal
from serving.explain import actionable_features
from serving.reasons import PlanSuggestion, suggested_plan

from .listing import OUTCOMES

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
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    explanations: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    plan: list[PlanSuggestion] = field(default_factory=list)
    what_if: list[WhatIfInput] = field(default_factory=list)


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
    view.scores = {s["outcome"]: s for s in queries.person_scores(conn, run.id, person_id)}
    view.alerts = queries.person_alerts(conn, run.id, person_id)
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
    """The suggested items (:func:`serving.reasons.suggested_plan`) with their last record."""
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
    """A feature's words without its number (the input field holds the number)."""
    if f.format == "flag":
        return str(f.zh if lang == "zh" else f.en)
    text = str(f.zh if lang == "zh" else f.en)
    return text.replace("{value}", "N")
