"""The worker's list pages: ``/my-list`` (own caseload) and ``/caseload/{worker_id}``.

Contract: both show a caseload "who first today" (:mod:`serving.priority`;
``?sort=relapse|loss_of_contact`` ranks by one outcome), with both outcomes'
bands in words + colour + a four-step meter and their change since the
previous run, the main reason and plan items (:mod:`serving.web.reasons`),
alerts, the data's age, filters (sort, band, alert, cohort) and a printable
version (``?view=print``) that keeps both outcomes, the data's age and a
notes column; ``?q=`` finds a person by (part of) their id; ``?view=xlsx`` and
``?view=csv`` download every matching row as shown (:mod:`serving.web.sheets`),
audited one line per exported person (``web_export``). ``/caseload/{id}``
serves supervisors and admins (and a worker's own id); a caseload outside the
caller's scope is the same 404 page as an unknown one. Each view writes one
audit line (``web_list``).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from features.config import OUTCOMES
from serving import queries
from serving.audit import Entry

from . import sheets
from .follow_up import FollowUp, follow_up
from .i18n import lang_of
from .listing import Filters, ListPage, caseload, parse_filters
from .render import page, redirect
from .visitor import Visitor, error_page, home_of, state_of, to_sign_in, visitor

router = APIRouter(include_in_schema=False)
#: Rows in one export (a caseload is about 20 people).
EXPORT_MAX = 10_000


@router.get("/my-list")
async def my_list(request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if v.who.worker_id is None:
        return redirect(home_of(v.who))
    return await _caseload_page(request, v, v.who.worker_id, own=True)


@router.get("/caseload/{worker_id}")
async def worker_caseload(worker_id: str, request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if not v.who.reads_persons:
        return not_found(request, v)
    return await _caseload_page(request, v, worker_id, own=worker_id == v.who.worker_id)


@router.get("/my-list/follow-up")
async def my_follow_up(request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if v.who.worker_id is None:
        return redirect(home_of(v.who))
    return await _caseload_page(request, v, v.who.worker_id, own=True, follow=True)


@router.get("/caseload/{worker_id}/follow-up")
async def worker_follow_up(worker_id: str, request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if not v.who.reads_persons:
        return not_found(request, v)
    own = worker_id == v.who.worker_id
    return await _caseload_page(request, v, worker_id, own=own, follow=True)


def not_found(request: Request, v: Visitor) -> Response:
    return error_page(request, v, 404, "not_found")


async def _caseload_page(
    request: Request, v: Visitor, worker_id: str, own: bool, follow: bool = False
) -> Response:
    state = state_of(request)
    f = parse_filters(request.query_params)
    if follow:  # the follow-up list covers the whole caseload
        f = Filters()

    view = request.query_params.get("view", "")
    exporting = view in ("csv", "xlsx") and not follow
    limit = EXPORT_MAX if exporting or follow else state.settings.page_max
    today = date.today()

    def load() -> tuple[bool, ListPage | None, list[FollowUp]]:
        with state.engine.connect() as conn:
            if queries.run_for(conn, None) is None:
                return False, None, []
            found = caseload(conn, v.who, worker_id, f, limit)
            items = follow_up(conn, found.run.as_of, found.rows, today) if found and follow else []
            return True, found, items

    has_run, found, items = await asyncio.to_thread(load)
    if not has_run:
        return page(request, "no_run.html", v.who, v.csrf)
    if found is None:
        return not_found(request, v)
    if exporting:
        return await _export(request, v, worker_id, found, view)
    await state.audit.record(
        Entry(
            v.who,
            "web_list",
            None,
            {
                "scope": f"worker:{worker_id}",
                "run_id": found.run.id,
                "n": len(found.rows),
                "view": "follow_up" if follow else view or "list",
            },
        )
    )
    if follow:
        return page(
            request,
            "follow_up.html",
            v.who,
            v.csrf,
            worker_id=worker_id,
            own=own,
            data=found,
            items=items,
            today_date=today,
        )
    printing = view == "print"
    return page(
        request,
        "list_print.html" if printing else "my_list.html",
        v.who,
        v.csrf,
        worker_id=worker_id,
        own=own,
        f=f,
        data=found,
        base=request.url.path,
        outcomes=OUTCOMES,
        printed_at=datetime.now().strftime("%Y-%m-%d %H:%M"),
    )


async def _export(
    request: Request, v: Visitor, worker_id: str, found: ListPage, kind: str
) -> Response:
    """The list as shown (order, both outcomes, reason, plan, alerts) as CSV or .xlsx.

    The file is rendered first; then one audit line per exported person
    (``web_export``), as the API's export does; then the download.
    """
    lang = lang_of(request)
    name = f"list-{worker_id}-{found.run.as_of}.{kind}"
    horizon = queries.horizon_text(found.run)
    if kind == "csv":
        content, media = sheets.csv_file(found.rows, lang, horizon), "text/csv; charset=utf-8"
    else:
        content, media = sheets.xlsx_file(found.rows, lang, horizon=horizon), sheets.XLSX_TYPE
    scope = {"scope": f"worker:{worker_id}", "run_id": found.run.id, "format": kind}
    await state_of(request).audit.record(
        *[Entry(v.who, "web_export", r.person_id, scope) for r in found.rows]
    )
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{quote(name)}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
