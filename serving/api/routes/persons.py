"""One person: current scores, history, timeline, stored explanation, what-if, actions.

Contract: every route first checks the person is in the caller's scope; one
that is not is a 404 identical to a person that does not exist. Every read is
appended to the audit log before the response is sent. The explanation is the
stored body of the run (identical to what the list showed); what-if rescores
the stored feature vector with changed actionable inputs using the *current*
champions and stores nothing; actions go into ``actions`` and show up in the
timeline.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from features.config import OUTCOMES, Outcome
from features.contract import local_now
from serving import queries
from serving.api import readers
from serving.api.deps import PersonReader, StateDep
from serving.api.errors import ERROR_RESPONSES, ApiError, not_found
from serving.api.routes.common import need_run
from serving.api.schemas import (
    PAGE_MAX,
    ActionIn,
    ActionOut,
    Explanation,
    HistoryPoint,
    PersonSummary,
    Timeline,
    WhatIfIn,
    WhatIfInputs,
    WhatIfOut,
)
from serving.api.state import ServiceState
from serving.audit import Entry, append
from serving.auth import Principal
from serving.champions import ModelsNotReady
from serving.db import actions
from serving.explanations import actionable_features, score_rows
from serving.queries import Run

router = APIRouter(prefix="/persons", tags=["persons"], responses=ERROR_RESPONSES)
DateQ = Annotated[dt.date | None, Query(alias="date", description="run date; default latest")]


@router.get("/{person_id}", response_model=PersonSummary, summary="A person and current scores")
async def person(
    person_id: str, who: PersonReader, state: StateDep, day: DateQ = None
) -> dict[str, Any]:
    with state.engine.connect() as conn:
        row = queries.visible_person(conn, who, person_id)
        if row is None:
            raise not_found()
        run = queries.run_for(conn, day)
        current = queries.person_scores(conn, run.id, person_id) if run else []
        alerts = queries.person_alerts(conn, run.id, person_id) if run else []
    await state.audit.record(Entry(who, "person", person_id, {"run_id": run.id if run else None}))
    return {
        **{
            k: row._mapping[k]
            for k in (
                "person_id",
                "worker_id",
                "district",
                "town",
                "program",
                "program_start",
                "program_end",
            )
        },
        "run_id": run.id if run else None,
        "as_of": run.as_of if run else None,
        "scores": current,
        "alerts": alerts,
    }


@router.get("/{person_id}/history", response_model=list[HistoryPoint], summary="Score history")
async def history(
    person_id: str,
    who: PersonReader,
    state: StateDep,
    outcome: Outcome | None = None,
    since: dt.date | None = None,
) -> list[dict[str, Any]]:
    with state.engine.connect() as conn:
        if queries.visible_person(conn, who, person_id) is None:
            raise not_found()
        points = queries.history(conn, person_id, outcome, since)
    await state.audit.record(Entry(who, "history", person_id))
    return points


@router.get("/{person_id}/timeline", response_model=Timeline, summary="Events and actions")
async def timeline(
    person_id: str,
    who: PersonReader,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 200,
) -> dict[str, Any]:
    with state.engine.connect() as conn:
        if queries.visible_person(conn, who, person_id) is None:
            raise not_found()
        items = queries.timeline(conn, person_id, limit)
    await state.audit.record(Entry(who, "timeline", person_id))
    return {"person_id": person_id, "items": items}


@router.get(
    "/{person_id}/explanation",
    response_model=Explanation,
    summary="The stored explanation of a score",
)
async def explanation(
    person_id: str,
    who: PersonReader,
    state: StateDep,
    outcome: Outcome = "relapse",
    day: DateQ = None,
) -> Response:
    """Drivers, base value, plan items and model of the score shown in that run's list."""
    payload = await readers.explanation(state, who, person_id, outcome, day)
    return Response(payload, media_type="application/json")


def _stored_vector(
    state: ServiceState, who: Principal, person_id: str, day: dt.date | None
) -> tuple[Run, dict[str, float]]:
    with state.engine.connect() as conn:
        if queries.visible_person(conn, who, person_id) is None:
            raise not_found()
        run = need_run(conn, day)
        found = queries.feature_vector(conn, run.id, person_id)
    if found is None:
        raise ApiError(404, "not_scored", f"{person_id} was not scored in the run of {run.as_of}")
    names, blob = found
    return run, dict(zip(names, np.frombuffer(blob, dtype=np.float64).tolist(), strict=True))


@router.get(
    "/{person_id}/what-if/inputs",
    response_model=WhatIfInputs,
    summary="The actionable inputs a what-if may change",
)
async def what_if_inputs(
    person_id: str, who: PersonReader, state: StateDep, day: DateQ = None
) -> dict[str, Any]:
    run, values = _stored_vector(state, who, person_id, day)
    used = {n for c in state.champions.current.champions.values() for n in c.feature_names}
    inputs = [
        {
            "feature": name,
            "value": values[name],
            "zh": f.describe(values[name], "zh"),
            "en": f.describe(values[name], "en"),
            "format": f.format,
            "plan_item": f.plan_item,
        }
        for name, f in actionable_features().items()
        if name in values and (not used or name in used)
    ]
    await state.audit.record(Entry(who, "what_if_inputs", person_id, {"run_id": run.id}))
    return {"person_id": person_id, "run_id": run.id, "inputs": inputs}


@router.post("/{person_id}/what-if", response_model=WhatIfOut, summary="Change inputs, rescore")
async def what_if(
    person_id: str, body: WhatIfIn, who: PersonReader, state: StateDep
) -> dict[str, Any]:
    """New score and drivers with changed actionable inputs; nothing is stored."""
    run, values = _stored_vector(state, who, person_id, body.date)
    allowed = actionable_features()
    bad = [
        {"field": f"body.changes.{k}", "message": "not an actionable input of the model"}
        for k in body.changes
        if k not in allowed or k not in values
    ]
    bad += [
        {"field": f"body.changes.{k}", "message": "must be a finite number >= 0"}
        for k, v in body.changes.items()
        if not np.isfinite(v) or v < 0
    ]
    if bad:
        raise ApiError(422, "invalid_request", "some changes cannot be applied", bad)
    changed = {**values, **body.changes}
    outcomes = [body.outcome] if body.outcome else list(OUTCOMES)
    results = []
    for outcome in outcomes:
        try:
            champ = state.champions.get(outcome)
        except ModelsNotReady as exc:
            raise ApiError(503, "models_not_ready", str(exc)) from exc
        missing = [n for n in champ.feature_names if n not in values]
        if missing:
            raise ApiError(409, "stale_features", "stored features predate the champion; rescore")
        X = np.array(
            [[values[n] for n in champ.feature_names], [changed[n] for n in champ.feature_names]]
        )
        p, _, bodies = score_rows(champ, X)
        common = {"run_id": None, "as_of": run.as_of, "person_id": person_id}
        results.append(
            {
                "outcome": outcome,
                "before": {**common, **bodies[0]},
                "after": {**common, **bodies[1]},
                "change": round(float(p[1] - p[0]), 6),
            }
        )
    await state.audit.record(
        Entry(who, "what_if", person_id, {"run_id": run.id, "changes": body.changes})
    )
    return {
        "person_id": person_id,
        "run_id": run.id,
        "as_of": run.as_of,
        "changes": body.changes,
        "results": results,
    }


@router.post(
    "/{person_id}/actions",
    response_model=ActionOut,
    status_code=201,
    summary="Record what was done, and feedback on the score",
)
def record_action(
    person_id: str, body: ActionIn, who: PersonReader, state: StateDep
) -> dict[str, Any]:
    """Runs in the thread pool: it writes, and a write may wait for the scoring job."""
    if body.kind == "plan_item" and not body.plan_item:
        raise ApiError(
            422,
            "invalid_request",
            "a plan_item action names the plan item",
            [{"field": "body.plan_item", "message": "required when kind is plan_item"}],
        )
    at = local_now().replace(microsecond=0)
    with state.engine.begin() as conn:
        if queries.visible_person(conn, who, person_id) is None:
            raise not_found()
        run = queries.run_for(conn, None)
        values = {
            **body.model_dump(),
            "person_id": person_id,
            "at": at,
            "user_id": who.user_id,
            "username": who.username,
            "role": who.role,
            "run_id": run.id if run else None,
        }
        new_id = conn.execute(
            actions.insert().values(**values).returning(actions.c.id)
        ).scalar_one()
        append(conn, [Entry(who, "action", person_id, {"action_id": new_id, "kind": body.kind})])
    return {
        **body.model_dump(),
        "id": new_id,
        "person_id": person_id,
        "at": at,
        "by": who.username,
        "role": who.role,
        "run_id": values["run_id"],
    }


@router.get("/{person_id}/actions", response_model=list[ActionOut], summary="Recorded actions")
async def list_actions(person_id: str, who: PersonReader, state: StateDep) -> list[dict[str, Any]]:
    with state.engine.connect() as conn:
        if queries.visible_person(conn, who, person_id) is None:
            raise not_found()
        rows = queries.action_rows(conn, person_id)
    await state.audit.record(Entry(who, "actions", person_id))
    keys = ActionOut.model_fields
    return [{k: r[k] for k in keys if k in r} | {"by": r["username"]} for r in rows]
