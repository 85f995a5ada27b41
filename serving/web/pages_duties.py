"""Duty pages: a caseload's due list, and a town's (or district's) duties view.

Contract: ``/my-list/due`` (a worker's own) and ``/caseload/{worker_id}/due``
(person readers within scope) show what falls due this week and what is overdue
(:func:`serving.duties.due`), most urgent first. ``/town/duties`` (supervisors and
admins; a town supervisor always sees their town, a district supervisor opens one
with ``?town=``) shows the KPIs against the responsibility targets, the overdue
escalation per worker, the graded controlled-medicine warnings and the town's
placement bases with their subsidy report (``/town/bases.csv`` and ``.xlsx`` export
it); without a town, a district's view shows every town's targets, the district
total and the district's bases. A scope the caller does not have is the same 404
page as an unknown one; each view writes one audit line (``web_due``,
``web_duties``, ``web_bases_export``) before the page is sent.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from fastapi import APIRouter
from openpyxl import Workbook
from starlette.requests import Request
from starlette.responses import Response

from features.schedule import escalation
from serving import duties, exports, queries
from serving.audit import Entry
from serving.web.sheets import XLSX_TYPE, _cell

from .pages_lists import not_found
from .render import page, redirect
from .visitor import Visitor, error_page, home_of, state_of, to_sign_in, visitor

router = APIRouter(include_in_schema=False)

BASE_COLUMNS = (
    "base_id", "name", "town", "placed", "qualifying", "insured_months", "eligible",
    "lump_sum_paid_on", "lump_sum_due_yuan", "insurance_subsidy_yuan", "total_due_yuan",
)  # fmt: skip


@router.get("/my-list/due")
async def my_due(request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if v.who.worker_id is None:
        return redirect(home_of(v.who))
    return await _due_page(request, v, v.who.worker_id, own=True)


@router.get("/caseload/{worker_id}/due")
async def worker_due(worker_id: str, request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if not v.who.reads_persons:
        return not_found(request, v)
    return await _due_page(request, v, worker_id, own=worker_id == v.who.worker_id)


async def _due_page(request: Request, v: Visitor, worker_id: str, own: bool) -> Response:
    state = state_of(request)

    def load() -> dict[str, Any] | None:
        with state.engine.connect() as conn:
            run = queries.run_for(conn, None)
            if run is None:
                return {"no_run": True}
            if not duties.people_in_scope(conn, v.who, run.id, worker_id=worker_id):
                return None
            frame = duties.due(conn, v.who, run, worker_id=worker_id)
        return {"run": run, "items": frame.to_dict("records")}

    data = await asyncio.to_thread(load)
    if data is None:
        return not_found(request, v)
    if data.get("no_run"):
        return page(request, "no_run.html", v.who, v.csrf)
    await state.audit.record(
        Entry(v.who, "web_due", None, {"scope": f"worker:{worker_id}", "run_id": data["run"].id})
    )
    return page(request, "due.html", v.who, v.csrf, worker_id=worker_id, own=own, **data)


def _place(request: Request, v: Visitor) -> tuple[str | None, str | None, bool]:
    """(district, town, allowed) asked for, within the caller's fixed scope."""
    q = request.query_params
    district = v.who.district or q.get("district") or None
    town = v.who.town or q.get("town") or None
    asked_town, asked_district = q.get("town"), q.get("district")
    allowed = not (
        (v.who.town and asked_town and asked_town != v.who.town)
        or (v.who.district and asked_district and asked_district != v.who.district)
    )
    return district, town, allowed


def _duties_data(request: Request, v: Visitor, district: str, town: str | None) -> dict[str, Any]:
    state = state_of(request)
    with state.engine.connect() as conn:
        run = queries.run_for(conn, None)
        if run is None:
            return {"no_run": True}
        targets = duties.targets(conn, v.who, run, district, town)
        if targets.empty:
            return {}
        data: dict[str, Any] = {
            "run": run,
            "targets": targets.to_dict("records"),
            "bases": duties.placement(conn, v.who, run, district, town).bases.to_dict("records"),
            "escalation": [],
            "escalated": [],
            "warnings": [],
        }
        if town is not None:
            due = duties.due(conn, v.who, run, district=district, town=town)
            data["escalation"] = escalation(due).to_dict("records")
            data["escalated"] = due.loc[due["status"] == "escalated"].to_dict("records")
            data["warnings"] = duties.medicine_warnings(conn, v.who, run, district, town)
    return data


@router.get("/town/duties")
async def town_duties(request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if v.who.role not in ("supervisor", "admin"):
        return error_page(request, v, 403, "forbidden_role")
    district, town, allowed = _place(request, v)
    if not allowed or district is None:
        return not_found(request, v)
    data = await asyncio.to_thread(_duties_data, request, v, district, town)
    if not data:
        return not_found(request, v)
    if data.get("no_run"):
        return page(request, "no_run.html", v.who, v.csrf)
    scope = f"town:{district}/{town}" if town else f"district:{district}"
    await state_of(request).audit.record(
        Entry(v.who, "web_duties", None, {"scope": scope, "run_id": data["run"].id})
    )
    return page(request, "duties.html", v.who, v.csrf, district=district, town=town, **data)


@router.get("/town/bases.{kind}")
async def bases_export(kind: str, request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if v.who.role not in ("supervisor", "admin"):
        return error_page(request, v, 403, "forbidden_role")
    district, town, allowed = _place(request, v)
    if kind not in ("csv", "xlsx") or not allowed or district is None:
        return not_found(request, v)
    state = state_of(request)

    def load() -> tuple[Any, list[Any]] | None:
        with state.engine.connect() as conn:
            run = queries.run_for(conn, None)
            if run is None:
                return None
            return run, duties.placement(conn, v.who, run, district, town).bases.to_dict("records")

    found = await asyncio.to_thread(load)
    if found is None or not found[1]:
        return not_found(request, v)
    run, rows = found
    body = [[_clean(r.get(c)) for c in BASE_COLUMNS] for r in rows]
    if kind == "csv":
        content, media = exports.csv_bytes(BASE_COLUMNS, body), "text/csv; charset=utf-8"
    else:
        book = Workbook(write_only=True)
        sheet = book.create_sheet("placement-bases")
        grid: list[list[exports.Cell]] = [list(BASE_COLUMNS), *body]
        for cells in grid:
            sheet.append([_cell(c) for c in cells])
        out = io.BytesIO()
        book.save(out)
        content, media = out.getvalue(), XLSX_TYPE
    scope = f"town:{district}/{town}" if town else f"district:{district}"
    await state.audit.record(
        Entry(v.who, "web_bases_export", None, {"scope": scope, "run_id": run.id})
    )
    name = f"placement-bases-{run.as_of}.{kind}"
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _clean(value: Any) -> exports.Cell:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | str):
        return value
    return str(value)
