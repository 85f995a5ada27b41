"""Admin pages: ``/admin/users`` (accounts, scopes, sign-in tokens) and ``/admin/audit``.

Contract: admins only; any other signed-in role gets the 403 page. The users
page lists every account with its role, scope, whether it is active, and how
many unexpired, unrevoked API tokens and web sessions it holds (never a token
or its hash). The audit page shows the newest :data:`AUDIT_SHOWN` lines of the
append-only audit log, filtered by user name, action or person id
(``?user=&action=&person=``). Viewing either writes an audit line
(``web_admin_users``, ``web_admin_audit``). Accounts are still managed with
the ``sunflower users`` command (docs/serving.md).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from serving.audit import Entry
from serving.db import api_tokens, audit_log, users

from .render import page
from .visitor import Visitor, error_page, state_of, to_sign_in, visitor

router = APIRouter(include_in_schema=False)
AUDIT_SHOWN = 200


async def _admin(request: Request) -> Visitor | Response:
    v = await visitor(request)
    if v is None:
        return to_sign_in(request)
    if v.who.role != "admin":
        return error_page(request, v, 403, "forbidden_role")
    return v


def _users(request: Request) -> list[dict[str, Any]]:
    now = datetime.now()
    live = sa.and_(
        api_tokens.c.revoked_at.is_(None),
        sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
    )
    sessions = sa.func.sum(sa.case((api_tokens.c.label == "web-session", 1), else_=0))
    with state_of(request).engine.connect() as conn:
        counts = {
            uid: (int(n or 0) - int(s or 0), int(s or 0))
            for uid, n, s in conn.execute(
                sa.select(api_tokens.c.user_id, sa.func.count(), sessions)
                .where(live)
                .group_by(api_tokens.c.user_id)
            )
        }
        rows = conn.execute(sa.select(users).order_by(users.c.role, users.c.username)).mappings()
        return [{**r, "tokens": counts.get(r["id"], (0, 0))} for r in rows]


@router.get("/admin/users")
async def users_page(request: Request) -> Response:
    v = await _admin(request)
    if isinstance(v, Response):
        return v
    rows = await asyncio.to_thread(_users, request)
    await state_of(request).audit.record(Entry(v.who, "web_admin_users", None, {"n": len(rows)}))
    return page(request, "admin_users.html", v.who, v.csrf, accounts=rows)


def _audit(request: Request, user: str, action: str, person: str) -> list[dict[str, Any]]:
    q = sa.select(audit_log)
    if user:
        q = q.where(audit_log.c.username == user)
    if action:
        q = q.where(audit_log.c.action == action)
    if person:
        q = q.where(audit_log.c.person_id == person)
    with state_of(request).engine.connect() as conn:
        rows = conn.execute(
            q.order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(AUDIT_SHOWN)
        ).mappings()
        out = []
        for r in rows:
            detail = r["detail"]
            try:
                shown = orjson.loads(detail) if detail else None
            except orjson.JSONDecodeError:
                shown = detail
            out.append({**r, "detail": shown})
        return out


@router.get("/admin/audit")
async def audit_page(request: Request) -> Response:
    v = await _admin(request)
    if isinstance(v, Response):
        return v
    q = request.query_params
    user, action, person = (q.get(k, "").strip()[:64] for k in ("user", "action", "person"))
    rows = await asyncio.to_thread(_audit, request, user, action, person)
    await state_of(request).audit.record(
        Entry(v.who, "web_admin_audit", None, {"user": user, "action": action, "person": person})
    )
    return page(
        request,
        "admin_audit.html",
        v.who,
        v.csrf,
        lines=rows,
        user=user,
        action=action,
        person=person,
        shown_max=AUDIT_SHOWN,
    )
