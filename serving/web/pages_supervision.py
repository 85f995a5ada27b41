"""Supervisor pages: ``/town`` (a town, a district's towns, or the districts) and ``/model-health``.

Contract: ``/town`` is for supervisors and admins. A town supervisor always
sees their own town; a district supervisor sees their district's towns and
opens one with ``?town=``; an admin picks a district, then a town. The town
view holds the workers' lists, groups sharing a main driver (一类一策),
cohorts (一批一策), KPIs (execution rate, lost contact, employment rate,
people per worker against 1:20) with the KPIs below their responsibility target
and each worker's escalated duties (:mod:`serving.duties`; the details on
``/town/duties``), and model health. A town outside the scope is
the same 404 page as an unknown one. Each view writes one audit line
(``web_town``). ``/model-health`` (every signed-in role) shows the champions'
versions, training dates and evaluation figures, the recent scoring runs, and the
model monitor (issue 16): each outcome's latest verdict in plain Chinese, two
trend charts — expected and realised precision of the top-10 % list — and a
table of the towns of each outcome's latest monitored run (verdict, expected and
realised precision, the gap, the input that moved most), for supervisors within
their scope (a town supervisor: their town), model owners and admins.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from features.config import OUTCOMES
from features.schedule import escalation
from serving import duties, queries
from serving.audit import Entry
from serving.bands import THRESHOLDS

from . import supervision
from .pages_lists import not_found
from .render import page
from .visitor import Visitor, error_page, state_of, to_sign_in, visitor

router = APIRouter(include_in_schema=False)


def _model_health(request: Request, v: Visitor) -> dict[str, Any]:
    state = state_of(request)
    with state.engine.connect() as conn:
        runs = supervision.recent_runs(conn)
        monitor = supervision.monitor_health(conn)
        monitor["towns"] = supervision.monitor_towns(conn, v.who, monitor["latest"])
    return {
        "models": state.champions.info(),
        "runs": runs,
        "thresholds": THRESHOLDS,
        "monitor": monitor,
    }


@router.get("/model-health")
async def model_health(request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    health = await asyncio.to_thread(_model_health, request, v)
    return page(request, "model_health.html", v.who, v.csrf, health=health)


@router.get("/town")
async def town_view(request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if v.who.role not in ("supervisor", "admin"):
        return error_page(request, v, 403, "forbidden_role")
    q = request.query_params
    outcome = q.get("outcome", "relapse")
    outcome = outcome if outcome in OUTCOMES else "relapse"
    district = v.who.district or q.get("district") or None
    town = v.who.town or q.get("town") or None
    asked_town, asked_district = q.get("town"), q.get("district")
    if (v.who.town and asked_town and asked_town != v.who.town) or (
        v.who.district and asked_district and asked_district != v.who.district
    ):
        return not_found(request, v)
    data = await asyncio.to_thread(_town_data, request, v, outcome, district, town)
    if data is None:
        return not_found(request, v)
    if data.get("no_run"):
        return page(request, "no_run.html", v.who, v.csrf)
    await state_of(request).audit.record(
        Entry(v.who, "web_town", None, {"scope": data["scope"], "run_id": data["run"].id})
    )
    return page(request, "town.html", v.who, v.csrf, outcome=outcome, **data)


def _missed(targets: Any) -> dict[str | None, list[str]]:
    """Per town (None: the district total), the KPIs below their target (docs/duties.md)."""
    out: dict[str | None, list[str]] = {}
    for row in targets.to_dict("records") if len(targets) else []:
        found = out.setdefault(row["town"], [])
        if row["met"] is False:
            found.append(str(row["kpi"]))
    return out


def _town_data(
    request: Request, v: Visitor, outcome: str, district: str | None, town: str | None
) -> dict[str, Any] | None:
    state = state_of(request)
    with state.engine.connect() as conn:
        run = queries.run_for(conn, None)
        if run is None:
            return {"no_run": True}
        known = supervision.places(conn, v.who, run.id)
        base: dict[str, Any] = {
            "run": run,
            "district": district,
            "town": town,
            "health": None,
            "districts": sorted({d for d, _ in known}),
        }
        if district is None:
            return {**base, "mode": "districts", "scope": "all"}
        towns = [t for d, t in known if d == district]
        if not towns:
            return None
        if town is None:
            sort = request.query_params.get("sort", "town")
            sort = sort if sort in supervision.TOWN_SORTS else "town"
            table, totals = supervision.district_table(conn, v.who, run.id, district, sort)
            return {
                **base,
                "mode": "district",
                "scope": f"district:{district}",
                "town_rows": table,
                "totals": totals,
                "town_sort": sort,
                "town_sorts": supervision.TOWN_SORTS,
                "missed": _missed(duties.targets(conn, v.who, run, district)),
                "health": None,
            }
        if town not in towns:
            return None
        args = (conn, v.who, run.id, outcome, district, town)
        groups, ungrouped = supervision.groups(*args)
        data = {
            **base,
            "mode": "town",
            "scope": f"town:{district}/{town}",
            "kpis": supervision.kpis(conn, v.who, run.id, district, town),
            "workers": supervision.worker_lists(conn, v.who, run.id, district, town),
            "groups": groups,
            "ungrouped": ungrouped,
            "cohorts": supervision.cohorts(*args),
            "missed": _missed(duties.targets(conn, v.who, run, district, town)),
            "escalation": {
                str(e["worker_id"]): e
                for e in escalation(
                    duties.due(conn, v.who, run, district=district, town=town)
                ).to_dict("records")
            },
        }
    data["health"] = _model_health(request, v)
    return data
