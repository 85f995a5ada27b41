"""Risk lists (a worker's caseload, a town, a district), groups, KPIs, aggregates, export.

Contract: lists come from the published run of a date (default the latest),
sorted by the chosen outcome's rank, filtered by band / alert / cohort, paged.
Each item is the JSON the scoring job stored, so the list, the explanation and
the export show the same numbers. Scope is applied in SQL; a worker asking
for another caseload, or a supervisor for another town, gets 404 like an
unknown one. Every list read is audited (one line, no person); an export
writes one audit line per exported person.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import Response

from features.catalog import load_catalog
from features.config import Outcome
from serving import exports, queries
from serving.api import readers
from serving.api.deps import AggregateReader, PersonReader, StateDep
from serving.api.errors import ERROR_RESPONSES, ApiError, not_found
from serving.api.routes.common import (
    ExportParams,
    ListParams,
    ListQuery,
    need_run,
)
from serving.api.schemas import PAGE_MAX, Aggregates, Groups, Kpis, RiskList, RunInfo
from serving.api.state import ServiceState
from serving.audit import Entry
from serving.auth import Principal
from serving.db import score_runs, scores, town_kpis
from serving.flags import ALERT_BITS

router = APIRouter(tags=["risk lists"], responses=ERROR_RESPONSES)


async def _list(
    state: ServiceState,
    who: Principal,
    q: ListQuery,
    scope_name: str,
    cond: readers.Eqs,
    rank: str,
) -> Response:
    """The shared body of the list routes (:func:`serving.api.readers.risk_list`)."""
    args = readers.ListArgs(
        day=q.date,
        outcome=q.outcome,
        bands=tuple(q.band or ()),
        alert=q.alert,
        any_alert=q.any_alert,
        cohort=q.cohort,
        limit=q.limit,
        offset=q.offset,
        order=q.order,
    )
    payload = await readers.risk_list(state, who, args, scope_name, cond, rank)
    return Response(payload, media_type="application/json")


@router.get("/risk-lists/me", response_model=RiskList, summary="My caseload (workers)")
async def my_list(who: PersonReader, state: StateDep, q: ListParams) -> Response:
    """The caller's own caseload, ranked; for a worker account."""
    if who.worker_id is None:
        raise ApiError(
            404, "not_found", "this account has no caseload; use a town or district list"
        )
    cond = (("worker_id", who.worker_id),)
    return await _list(state, who, q, f"worker:{who.worker_id}", cond, "rank_caseload")


@router.get(
    "/risk-lists/workers/{worker_id}", response_model=RiskList, summary="A worker's caseload"
)
async def worker_list(
    worker_id: str, who: PersonReader, state: StateDep, q: ListParams
) -> Response:
    """A caseload ranked by risk (workers: only their own)."""
    cond = (("worker_id", worker_id),)
    return await _list(state, who, q, f"worker:{worker_id}", cond, "rank_caseload")


@router.get(
    "/risk-lists/districts/{district}/towns/{town}",
    response_model=RiskList,
    summary="A town's list (街镇)",
)
async def town_list(
    district: str, town: str, who: PersonReader, state: StateDep, q: ListParams
) -> Response:
    cond = (("district", district), ("town", town))
    return await _list(state, who, q, f"town:{district}/{town}", cond, "rank_town")


@router.get(
    "/risk-lists/districts/{district}", response_model=RiskList, summary="A district's list (区)"
)
async def district_list(
    district: str, who: PersonReader, state: StateDep, q: ListParams
) -> Response:
    cond = (("district", district),)
    return await _list(state, who, q, f"district:{district}", cond, "rank_district")


@router.get(
    "/exports/risk-list.csv",
    summary="Export a list as CSV (audited per person)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_list(
    who: PersonReader,
    state: StateDep,
    q: ExportParams,
) -> Response:
    """One caseload (``worker_id``) or one town/district, all rows matching the filters."""
    worker_id, district, town = q.worker_id, q.district, q.town
    if worker_id:
        cond, rank, scope = scores.c.worker_id == worker_id, "rank_caseload", f"worker:{worker_id}"
    elif district and town:
        cond = sa.and_(scores.c.district == district, scores.c.town == town)
        rank, scope = "rank_town", f"town:{district}/{town}"
    elif district:
        cond, rank, scope = scores.c.district == district, "rank_district", f"district:{district}"
    else:
        raise ApiError(
            422,
            "invalid_request",
            "give worker_id, or district (and town)",
            [{"field": "query.worker_id", "message": "one scope is required"}],
        )
    with state.engine.connect() as conn:
        run = need_run(conn, q.date)
        ranked = queries.ranked_items(
            conn,
            run.id,
            q.outcome,
            sa.and_(cond, who.scope_filter(scores)),
            rank,
            bands=q.band,
            alert="any" if q.any_alert else q.alert,
            cohort=q.cohort,
        )
    if not ranked:
        raise not_found("list")
    rows = [(n, orjson.loads(i)) for n, i in ranked]
    # The whole file first, then the audit, then the answer: a failure audits nobody.
    content = exports.csv_bytes(EXPORT_HEADER, [_export_row(n, r) for n, r in rows])
    await state.audit.record(
        *[Entry(who, "export", r["person_id"], {"scope": scope, "run_id": run.id}) for _, r in rows]
    )
    return exports.csv_response(content, f"risk-list-{run.as_of}-{q.outcome}.csv")


EXPORT_HEADER = (
    "rank",
    "person_id",
    "worker_id",
    "town",
    "outcome",
    "p",
    "band",
    "change",
    "top_driver_zh",
    "top_driver_en",
    "alerts",
    "model_version",
)


def _export_row(rank: int, r: dict[str, Any]) -> list[exports.Cell]:
    """One export line: the rank in the exported scope, then the stored list item."""
    top = r["top_driver"] or {}
    return [
        rank,
        r["person_id"],
        r["worker_id"],
        r["town"],
        r["outcome"],
        r["p"],
        r["band"]["code"],
        r["change"],
        top.get("sentence_zh", ""),
        top.get("sentence_en", ""),
        " ".join(r["alerts"]),
        r["model"]["version"],
    ]


def _group_words(spec: str) -> tuple[str, str, str | None]:
    for s in load_catalog().specs:
        if s.name == spec:

            def plain(t: str) -> str:
                return (
                    t.replace("{period}", "")
                    .replace("{value}", "N")
                    .replace("{choice}", "…")
                    .strip()
                )

            return plain(s.zh), plain(s.en), s.plan_item
    return spec, spec, None


@router.get("/groups", response_model=Groups, summary="People sharing a main driver (一类一策)")
async def groups(
    who: PersonReader,
    state: StateDep,
    district: str,
    town: str | None = None,
    outcome: Outcome = "relapse",
    day: Annotated[
        dt.date | None, Query(alias="date", description="run date; default latest")
    ] = None,
) -> Groups:
    """Groups of people whose strongest risk-raising driver is the same catalog entry."""
    cond = scores.c.district == district
    if town:
        cond = sa.and_(cond, scores.c.town == town)
    with state.engine.connect() as conn:
        run = need_run(conn, day)
        rows = conn.execute(
            sa.select(scores.c.top_spec, scores.c.person_id)
            .where(scores.c.run_id == run.id, scores.c.outcome == outcome, cond)
            .where(who.scope_filter(scores), scores.c.top_spec.is_not(None))
            .order_by(scores.c.top_spec, scores.c.rank_district)
        ).all()
    if not rows:
        raise not_found("town or district")
    members: dict[str, list[str]] = {}
    for spec, pid in rows:
        members.setdefault(spec, []).append(pid)
    out = []
    for spec, pids in sorted(members.items(), key=lambda kv: -len(kv[1])):
        zh, en, plan = _group_words(spec)
        out.append(
            {
                "driver": spec,
                "zh": zh,
                "en": en,
                "plan_item": plan,
                "count": len(pids),
                "person_ids": pids,
            }
        )
    scope = f"town:{district}/{town}" if town else f"district:{district}"
    await state.audit.record(Entry(who, "groups", None, {"scope": scope, "run_id": run.id}))
    return Groups(run_id=run.id, as_of=run.as_of, outcome=outcome, scope=scope, groups=out)  # type: ignore[arg-type]


@router.get("/kpis", response_model=Kpis, summary="KPIs per town")
async def kpis(
    who: AggregateReader,
    state: StateDep,
    district: str | None = None,
    town: str | None = None,
    day: Annotated[
        dt.date | None, Query(alias="date", description="run date; default latest")
    ] = None,
) -> Kpis:
    """Execution rate, lost-contact count, employment rate, people per worker (target 20)."""
    conds = [town_kpis.c.district == district] if district else []
    if town:
        conds.append(town_kpis.c.town == town)
    if who.role == "supervisor":
        conds.append(who.scope_filter(town_kpis))
    with state.engine.connect() as conn:
        run = need_run(conn, day)
        rows = (
            conn.execute(
                sa.select(town_kpis.c.body)
                .where(town_kpis.c.run_id == run.id, *conds)
                .order_by(town_kpis.c.district, town_kpis.c.town)
            )
            .scalars()
            .all()
        )
    if not rows:
        raise not_found("town or district")
    return Kpis(run_id=run.id, as_of=run.as_of, towns=[orjson.loads(r) for r in rows])


@router.get("/aggregates", response_model=Aggregates, summary="Score aggregates (no persons)")
async def aggregates(
    who: AggregateReader,
    state: StateDep,
    district: str | None = None,
    day: Annotated[
        dt.date | None, Query(alias="date", description="run date; default latest")
    ] = None,
) -> Aggregates:
    """Band counts, mean and top-decile probability per outcome; alert counts."""
    conds = [scores.c.district == district] if district else []
    if who.role == "supervisor":
        conds.append(who.scope_filter(scores))
    with state.engine.connect() as conn:
        run = need_run(conn, day)
        base = sa.and_(scores.c.run_id == run.id, *conds)
        rows = conn.execute(
            sa.select(scores.c.outcome, scores.c.band, sa.func.count(), sa.func.avg(scores.c.p))
            .where(base)
            .group_by(scores.c.outcome, scores.c.band)
        ).all()
        masks = conn.execute(
            sa.select(scores.c.alert_mask, sa.func.count())
            .where(base, scores.c.outcome == "relapse", scores.c.alert_mask != 0)
            .group_by(scores.c.alert_mask)
        ).all()
    by: dict[str, dict[str, Any]] = {}
    for outcome, band, n, mean in rows:
        o = by.setdefault(outcome, {"persons": 0, "bands": {}, "mean_p": 0.0})
        o["persons"] += n
        o["bands"][str(band)] = n
        o["mean_p"] += float(mean) * n
    for o in by.values():
        o["mean_p"] = round(o["mean_p"] / o["persons"], 6) if o["persons"] else None
    alerts = {k: sum(n for m, n in masks if m & bit) for k, bit in ALERT_BITS.items()}
    persons = max((o["persons"] for o in by.values()), default=0)
    return Aggregates(
        run_id=run.id,
        as_of=run.as_of,
        scope=district or "all",
        persons=persons,
        by_outcome=by,
        alerts=alerts,
    )


@router.get("/runs", response_model=list[RunInfo], summary="Scoring runs, newest first")
async def runs(
    who: AggregateReader,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 30,
) -> list[RunInfo]:
    with state.engine.connect() as conn:
        rows = (
            conn.execute(sa.select(score_runs).order_by(score_runs.c.id.desc()).limit(limit))
            .mappings()
            .all()
        )
    return [
        RunInfo(
            run_id=r["id"],
            as_of=r["as_of"],
            status=r["status"],
            n_persons=r["n_persons"],
            models=orjson.loads(r["models"]),
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            seconds=r["seconds"],
        )
        for r in rows
    ]
