"""Who is looking at a page: the signed-in account, its session and CSRF token.

Contract: :func:`visitor` returns a :class:`Visitor` for a request carrying a
live session cookie, else None; routes then answer :func:`to_sign_in` (a 303
to ``/login?next=<this page>``). :func:`home_of` is where each role lands
after signing in. :func:`check_csrf` validates a posted form's ``csrf`` field.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from serving.api.state import ServiceState
from serving.auth import Principal

from .render import page, redirect
from .session import csrf_ok, csrf_token, resolve_session, session_of


@dataclass(frozen=True)
class Visitor:
    who: Principal
    session: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.session)


def state_of(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


async def visitor(request: Request) -> Visitor | None:
    session = session_of(request)
    if session is None:
        return None
    who = await asyncio.to_thread(resolve_session, state_of(request).engine, session)
    return Visitor(who, session) if who else None


def to_sign_in(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/login?next={quote(here, safe='')}")


def home_of(who: Principal) -> str:
    if who.role == "worker":
        return "/my-list"
    if who.role in ("supervisor", "admin"):
        return "/town"
    if who.role == "model_owner":
        return "/model-health"
    return "/no-pages"


def check_csrf(v: Visitor, form: dict[str, str]) -> bool:
    return csrf_ok(v.csrf, form.get("csrf"))


def error_page(request: Request, v: Visitor, status: int, message: str) -> Response:
    """The error page (403 or 404) for a signed-in visitor, in their language."""
    title = "not_found_title" if status == 404 else "forbidden_title"
    return page(request, "error.html", v.who, v.csrf, status, title=title, message=message)
