"""The web pages for social workers and supervisors (zh-CN first, English switchable).

Contract: :data:`router` holds every page route (sign-in/out, my list, a
person, the town and district views, model health, the admin's accounts and
audit log, the API reference at ``/docs``, static files); the app includes it
with one line. Pages share the API's service state, access rules,
queries and audit writer; they render on the server (Jinja2, inline SVG
charts) and load nothing from outside this server. See docs/pages.md.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import (
    pages_admin,
    pages_auth,
    pages_docs,
    pages_duties,
    pages_lists,
    pages_person,
    pages_supervision,
)

router = APIRouter(include_in_schema=False)
for _module in (
    pages_admin,
    pages_auth,
    pages_docs,
    pages_duties,
    pages_lists,
    pages_person,
    pages_supervision,
):
    router.include_router(_module.router)

__all__ = ["router"]
