"""The person page ``/people/{id}``, its action form and its what-if form.

Contract: ``GET`` shows both scores and their trend, the drivers as bars with
sentences, suggested plan items with one-click done / not done / not suitable
and a note, a what-if panel and the timeline; it writes one audit line
(``web_person``). ``POST …/actions`` records through the API's own
:func:`serving.api.routes.persons.record_action` (same checks, same table, same
audit line) and returns to the page (303). ``POST …/what-if`` runs the API's
:func:`serving.api.routes.persons.what_if` (audited, nothing stored) and shows the
page with the result. Both posts need the session's CSRF token. A person who
does not exist and one outside the caller's scope get the same 404 page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from features.config import OUTCOMES
from serving.api.errors import ApiError
from serving.api.routes.persons import record_action, what_if
from serving.api.schemas import ActionIn, WhatIfIn
from serving.audit import Entry

from . import charts
from .pages_lists import not_found
from .person_view import PersonView, load_person
from .render import page, redirect
from .session import FormError, read_form
from .visitor import Visitor, check_csrf, error_page, state_of, to_sign_in, visitor

router = APIRouter(include_in_schema=False)
ACTION_KINDS = ("plan_item", "home_visit", "referral", "feedback", "other")


async def _load(request: Request, v: Visitor, person_id: str) -> PersonView | None:
    state = state_of(request)
    features = {n for c in state.champions.current.champions.values() for n in c.feature_names}

    def read() -> PersonView | None:
        with state.engine.connect() as conn:
            return load_person(conn, v.who, person_id, features)

    return await asyncio.to_thread(read)


async def _show(
    request: Request, v: Visitor, person_id: str, status: int = 200, **extra: Any
) -> Response:
    if not v.who.reads_persons:
        return not_found(request, v)
    view = await _load(request, v, person_id)
    if view is None:
        return not_found(request, v)
    await state_of(request).audit.record(
        Entry(v.who, "web_person", person_id, {"run_id": view.run.id if view.run else None})
    )
    values: dict[str, Any] = {
        "view": view,
        "pid": person_id,
        "outcomes": OUTCOMES,
        "trend": charts.trend(view.history),
        "bars": {o: charts.driver_bars(e["drivers"]) for o, e in view.explanations.items()},
        "recorded": request.query_params.get("recorded") == "1",
        "what_if_result": None,
        "what_if_error": None,
        "what_if_none": False,
        "form_error": None,
        "what_if_changes": {},
    }
    values.update(extra)
    return page(request, "person.html", v.who, v.csrf, status, **values)


@router.get("/people/{person_id}")
async def person_page(person_id: str, request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    return await _show(request, v, person_id)


async def _posted(request: Request, v: Visitor) -> dict[str, str] | None:
    try:
        form = await read_form(request)
    except FormError:
        return None
    return form if check_csrf(v, form) else None


def _action_from(form: dict[str, str]) -> ActionIn:
    kind = form.get("kind", "plan_item")
    agrees = {"yes": True, "no": False}.get(form.get("agrees", ""))
    outcome = form.get("outcome") or None
    return ActionIn.model_validate(
        {
            "kind": kind if kind in ACTION_KINDS else "other",
            "plan_item": form.get("plan_item") or None,
            "status": form.get("status") or None,
            "outcome": outcome if outcome in OUTCOMES else None,
            "agrees_with_score": agrees,
            "note": _dated_note(form),
        }
    )


def _dated_note(form: dict[str, str]) -> str | None:
    """The note, led by the date the work was done ("工作日期 2025-06-01：…") when a
    valid past-or-today date was given on the other-work form (the API's action has
    no date of its own; its ``at`` is when it was recorded)."""
    note = form.get("note", "").strip()
    raw = form.get("done_on", "").strip()
    try:
        done_on = dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        done_on = None
    if done_on is not None and done_on <= dt.date.today():
        head = f"工作日期 {done_on.isoformat()}"
        return f"{head}：{note}" if note else head
    return note or None


async def _checked_post(request: Request) -> tuple[Visitor, dict[str, str]] | Response:
    """The visitor and form of a person-page POST, or the page that refuses it.

    Signed out: to sign-in; a stale or forged CSRF token: 403; a role without
    person reads: the same 404 as a person that does not exist.
    """
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    form = await _posted(request, v)
    if form is None:
        return error_page(request, v, 403, "form_expired")
    if not v.who.reads_persons:
        return not_found(request, v)
    return v, form


@router.post("/people/{person_id}/actions")
async def record(person_id: str, request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    v, form = checked
    try:
        body = _action_from(form)
        await run_in_threadpool(record_action, person_id, body, v.who, state_of(request))
    except ApiError as exc:
        if exc.status == 404:
            return not_found(request, v)
        return await _show(request, v, person_id, 422, form_error=exc.message)
    except ValidationError as exc:
        why = "; ".join(str(e["msg"]) for e in exc.errors())
        return await _show(request, v, person_id, 422, form_error=why)
    return redirect(f"/people/{person_id}?recorded=1#timeline")


@router.post("/people/{person_id}/what-if")
async def what_if_page(person_id: str, request: Request) -> Response:
    checked = await _checked_post(request)
    if isinstance(checked, Response):
        return checked
    v, form = checked
    view = await _load(request, v, person_id)
    if view is None:
        return not_found(request, v)
    changes: dict[str, float] = {}
    for inp in view.what_if:
        raw = form.get(f"f:{inp.feature}", "").strip()
        try:
            new = float(raw)
        except ValueError:
            continue
        if new != inp.value:
            changes[inp.feature] = new
    if not changes:
        return await _show(request, v, person_id, what_if_none=True)
    try:
        result = await what_if(person_id, WhatIfIn(changes=changes), v.who, state_of(request))
    except ApiError as exc:
        if exc.status == 404:
            return not_found(request, v)
        fields = "; ".join(f["message"] for f in exc.fields)
        return await _show(request, v, person_id, 200, what_if_error=f"{exc.message} {fields}")
    return await _show(request, v, person_id, what_if_result=result, what_if_changes=changes)
