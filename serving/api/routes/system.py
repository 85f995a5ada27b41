"""Models, identity, health, readiness, metrics and the admin routes (reload, audit, users).

Contract: ``/healthz`` says the process is up; ``/readyz`` is 200 only when the
database answers and both champions are loaded (503 otherwise, with reasons), and
says ``degraded`` (still 200: stale lists are still served) when the latest run is
older than ``max_run_age_days`` or there is none;
``/metrics`` is Prometheus text (aggregates only, no person data). Reload
loads the newly promoted champions and swaps them without dropping requests
(see :mod:`serving.champions`). The audit log can be read by admins and by no
one else; there is no route that changes or deletes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from features.contract import local_now
from serving import audit, queries
from serving.api.deps import Admin, StateDep, UserDep
from serving.api.errors import ERROR_RESPONSES, json_response
from serving.api.schemas import (
    OFFSET_MAX,
    PAGE_MAX,
    AuditPage,
    Health,
    Me,
    ModelsOut,
    Ready,
    ReloadOut,
)
from serving.api.state import ServiceState
from serving.auth import list_users
from serving.bands import THRESHOLDS

api = APIRouter(responses=ERROR_RESPONSES)
ops = APIRouter(tags=["operations"])


@api.get("/me", response_model=Me, tags=["identity"], summary="Who the token belongs to")
async def me(who: UserDep) -> Me:
    return Me(
        username=who.username,
        role=who.role,
        worker_id=who.worker_id,
        district=who.district,
        town=who.town,
    )


@api.get("/models", response_model=ModelsOut, tags=["models"], summary="Champion models")
async def models(who: UserDep, state: StateDep) -> dict[str, Any]:
    """Versions, training date and headline metrics of the loaded champions; band thresholds."""
    return {"models": state.champions.info(), "bands": {k: list(v) for k, v in THRESHOLDS.items()}}


async def reload_models(state: ServiceState, request: Request | None = None) -> dict[str, Any]:
    """Load the newly promoted champions in a thread, then swap (requests keep flowing)."""
    before = state.champions.info()
    await asyncio.to_thread(state.champions.reload)
    if request is not None:
        metrics = request.app.state.metrics
        metrics.reloads.inc()
        for m in state.champions.info():
            metrics.models.labels(m["outcome"], m["version"] or "").set(int(m["loaded"]))
    return {"before": before, "after": state.champions.info()}


@api.post("/admin/reload", response_model=ReloadOut, tags=["admin"], summary="Reload champions")
async def reload(who: Admin, state: StateDep, request: Request) -> dict[str, Any]:
    return await reload_models(state, request)


@api.get("/admin/audit", response_model=AuditPage, tags=["admin"], summary="Query the audit log")
async def audit_log(
    who: Admin,
    state: StateDep,
    person_id: str | None = None,
    username: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX)] = 0,
) -> dict[str, Any]:
    """Read-only: entries newest first. The log cannot be edited through the API."""
    total, items = await asyncio.to_thread(
        audit.query,
        state.engine,
        person_id=person_id,
        username=username,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@api.get("/admin/users", response_model=list[Me], tags=["admin"], summary="Accounts")
async def users(who: Admin, state: StateDep) -> list[dict[str, Any]]:
    return list_users(state.engine)


@ops.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@ops.get("/readyz", response_model=Ready, summary="Readiness", responses={503: {"model": Ready}})
async def readyz(state: StateDep) -> Response:
    try:
        with state.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            run = queries.run_for(conn, None)
        db_ok = True
    except Exception:
        db_ok, run = False, None
    ready = db_ok and state.champions.ready
    age = (local_now().date() - run.as_of).days if run else None
    reasons = [] if db_ok else ["the database does not answer"]
    if not state.champions.ready:
        reasons.append("a champion is not loaded")
    if db_ok and age is None:
        reasons.append("no published run yet: run `score`")
    elif age is not None and age > state.settings.max_run_age_days:
        reasons.append(
            f"the latest run is {age} days old (more than {state.settings.max_run_age_days})"
        )
    status = "not_ready" if not ready else "degraded" if reasons else "ready"
    body = Ready.model_validate(
        {
            "ready": ready,
            "status": status,
            "database": db_ok,
            "models": state.champions.info(),
            "latest_run": run.as_of if run else None,
            "latest_run_age_days": age,
            "reasons": reasons,
        }
    )
    return json_response(body.model_dump(mode="json"), status_code=200 if ready else 503)


@ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request, state: StateDep) -> Response:
    try:  # the monitor's and the daily job's gauges come from the database
        request.app.state.metrics.refresh_from(state.engine)
    except Exception:  # noqa: BLE001 - the request metrics are still worth serving
        pass
    return Response(
        request.app.state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
