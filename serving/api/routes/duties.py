"""Due lists, controlled-medicine warnings, placement bases and responsibility targets.

Contract: every route reads the published run of a date (default the latest) and
the input tables as known at its day, through :mod:`serving.duties`, with the
caller's scope applied in SQL; a scope the caller does not have answers 404 like
an unknown one. Person-level answers (due lists, medicine warnings) are for person
readers and audited with one line per read (no person); the bases' report and the
targets are aggregates for supervisors and admins (people placed are listed only
within the caller's scope). The CSV export of the bases' report is audited too.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query
from fastapi.responses import Response

from serving import duties, exports
from serving.api.deps import AggregateReader, PersonReader, StateDep
from serving.api.errors import ERROR_RESPONSES, ApiError, not_found
from serving.api.routes.common import need_run
from serving.api.schemas import (
    BaseReport,
    DueItem,
    DueList,
    DueStatus,
    MedicineWarnings,
    TargetRow,
    Targets,
)
from serving.api.state import ServiceState
from serving.audit import Entry
from serving.auth import Principal

router = APIRouter(tags=["duties"], responses=ERROR_RESPONSES)
DayParam = Annotated[dt.date | None, Query(description="run date; default the latest")]


def _due_body(run: Any, scope: str, frame: Any) -> DueList:
    items = [
        DueItem(
            person_id=r.person_id,
            worker_id=r.worker_id,
            town=r.town,
            duty=r.duty,
            zh=r.zh,
            en=r.en,
            last_done=None if r.last_done is None or r.last_done != r.last_done else r.last_done,
            due=r.due.date(),
            days_late=int(r.days_late),
            status=r.status,
        )
        for r in frame.itertuples()
    ]
    counts: dict[DueStatus, int] = {
        s: sum(1 for i in items if i.status == s) for s in get_args(DueStatus)
    }
    return DueList(run_id=run.id, as_of=run.as_of, scope=scope, counts=counts, items=items)


async def _due(
    state: ServiceState, who: Principal, day: dt.date | None, scope: str, **where: str
) -> DueList:
    with state.engine.connect() as conn:
        run = need_run(conn, day)
        if not duties.people_in_scope(conn, who, run.id, **where):
            raise not_found("list")
        frame = duties.due(conn, who, run, **where)
    await state.audit.record(Entry(who, "due_list", None, {"scope": scope, "run_id": run.id}))
    return _due_body(run, scope, frame)


@router.get("/due-lists/me", response_model=DueList, summary="My due list (workers)")
async def my_due(who: PersonReader, state: StateDep, date: DayParam = None) -> DueList:
    """What falls due in the caller's caseload this week, and what is overdue."""
    if who.worker_id is None:
        raise ApiError(404, "not_found", "this account has no caseload; use a town due list")
    return await _due(state, who, date, f"worker:{who.worker_id}", worker_id=who.worker_id)


@router.get("/due-lists/workers/{worker_id}", response_model=DueList, summary="A worker's due list")
async def worker_due(
    worker_id: str, who: PersonReader, state: StateDep, date: DayParam = None
) -> DueList:
    """Check-ins, drug tests, hair tests and home visits due within 7 days or overdue."""
    return await _due(state, who, date, f"worker:{worker_id}", worker_id=worker_id)


@router.get(
    "/due-lists/districts/{district}/towns/{town}",
    response_model=DueList,
    summary="A town's due list (overdue escalation)",
)
async def town_due(
    district: str, town: str, who: PersonReader, state: StateDep, date: DayParam = None
) -> DueList:
    """Every caseload of the town; ``escalated`` items are the catalog's overdue alerts."""
    return await _due(state, who, date, f"town:{district}/{town}", district=district, town=town)


@router.get(
    "/medicine-warnings/districts/{district}/towns/{town}",
    response_model=MedicineWarnings,
    summary="A town's controlled-medicine warnings",
)
async def medicine_warnings(
    district: str, town: str, who: PersonReader, state: StateDep, date: DayParam = None
) -> MedicineWarnings:
    """People with a graded medicine alert, most serious first, with 30 days of purchases."""
    scope = f"town:{district}/{town}"
    with state.engine.connect() as conn:
        run = need_run(conn, date)
        if not duties.people_in_scope(conn, who, run.id, district=district, town=town):
            raise not_found("town")
        found = duties.medicine_warnings(conn, who, run, district, town)
    await state.audit.record(
        Entry(who, "medicine_warnings", None, {"scope": scope, "run_id": run.id})
    )
    return MedicineWarnings.model_validate(
        {
            "run_id": run.id,
            "as_of": run.as_of,
            "scope": scope,
            "people": [vars(w) for w in found],
        }  # fmt: skip
    )


def _bases(state: ServiceState, who: Principal, day: dt.date | None, district: str,
           town: str | None) -> tuple[Any, Any]:  # fmt: skip
    with state.engine.connect() as conn:
        run = need_run(conn, day)
        report = duties.placement(conn, who, run, district, town)
    if report.bases.empty:
        raise not_found("district")
    return run, report


@router.get(
    "/placement-bases/districts/{district}",
    response_model=BaseReport,
    summary="Placement bases: subsidy eligibility (就业安置基地)",
)
async def placement_bases(
    district: str,
    who: AggregateReader,
    state: StateDep,
    town: str | None = None,
    date: DayParam = None,
) -> BaseReport:
    """Per base: people placed in the rolling window, qualifying, subsidy due (docs/duties.md)."""
    run, report = _bases(state, who, date, district, town)
    return BaseReport.model_validate(
        {
            "run_id": run.id,
            "as_of": report.as_of,
            "window_start": report.window_start,
            "bases": report.bases.to_dict("records"),
            "people": report.people.to_dict("records"),
        }
    )


BASE_HEADER = (
    "base_id", "name", "district", "town", "placed", "qualifying", "insured_months",
    "eligible", "lump_sum_paid_on", "lump_sum_due_yuan", "insurance_subsidy_yuan",
    "total_due_yuan",
)  # fmt: skip


def base_rows(report: Any) -> list[list[exports.Cell]]:
    """The export's lines (one per base), in :data:`BASE_HEADER` order."""
    return [
        [None if v != v else v for v in (r.get(k) for k in BASE_HEADER)]  # NaN -> empty
        for r in report.bases.to_dict("records")
    ]


@router.get(
    "/exports/placement-bases.csv",
    summary="Export the placement bases' report as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_bases(
    who: AggregateReader,
    state: StateDep,
    district: str,
    town: str | None = None,
    date: DayParam = None,
) -> Response:
    run, report = _bases(state, who, date, district, town)
    content = exports.csv_bytes(BASE_HEADER, base_rows(report))
    scope = f"district:{district}" + (f"/{town}" if town else "")
    await state.audit.record(Entry(who, "export_bases", None, {"scope": scope, "run_id": run.id}))
    return exports.csv_response(content, f"placement-bases-{run.as_of}.csv")


@router.get(
    "/targets/districts/{district}",
    response_model=Targets,
    summary="KPIs against the responsibility targets (目标责任书)",
)
async def targets(
    district: str,
    who: AggregateReader,
    state: StateDep,
    town: str | None = None,
    date: DayParam = None,
) -> Targets:
    """Each town's KPIs (and the district's total, town null) against their targets."""
    with state.engine.connect() as conn:
        run = need_run(conn, date)
        frame = duties.targets(conn, who, run, district, town)
    if frame.empty:
        raise not_found("district")
    rows = [
        TargetRow.model_validate({k: (None if v != v else v) for k, v in r.items()})
        for r in frame.to_dict("records")
    ]
    return Targets(run_id=run.id, as_of=run.as_of, rows=rows)
