"""Sign-in, sign-out, the root URL, the language switch and the static files.

Contract: ``GET /`` sends a signed-out visitor to ``/login`` and a signed-in
one to their role's home page. ``GET /login`` shows the form (with a fresh
double-submit CSRF cookie); ``POST /login`` checks user name + access token
and sets the session cookie (see :mod:`serving.web.session`); a failure shows
one generic message, whatever was wrong. ``POST /logout`` (CSRF-checked)
revokes the session and clears the cookie. ``GET /lang/{zh|en}`` remembers a
language and returns to ``next``. ``GET /static/{name}`` serves the few
files of ``serving/web/static`` (nothing is fetched from elsewhere).
"""

from __future__ import annotations

import asyncio
import mimetypes

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from .i18n import LANG_COOKIE, LANGS
from .render import HERE, local_path, page, redirect
from .session import (
    LOGIN_CSRF_COOKIE,
    FormError,
    clear_session_cookie,
    csrf_ok,
    new_login_csrf,
    read_form,
    session_of,
    set_login_csrf_cookie,
    set_session_cookie,
    sign_in,
    sign_out,
)
from .visitor import check_csrf, error_page, home_of, state_of, visitor

router = APIRouter(include_in_schema=False)
STATIC = HERE / "static"
STATIC_FILES = {p.name for p in STATIC.iterdir() if p.is_file()}


@router.get("/")
async def root(request: Request) -> Response:
    v = await visitor(request)
    return redirect(home_of(v.who) if v else "/login")


def _login_page(
    request: Request,
    error: str | None = None,
    status: int = 200,
    nxt: str | None = None,
    username: str = "",
) -> Response:
    """The sign-in form; after a failure it keeps the user name typed (never the token)."""
    token = new_login_csrf()
    nxt = local_path(nxt or request.query_params.get("next"), "")
    response = page(
        request,
        "login.html",
        None,
        login_csrf=token,
        error=error,
        next=nxt,
        username=username[:64],
        signed_out=request.query_params.get("signed_out") == "1",
        status_code=status,
    )
    set_login_csrf_cookie(response, request, token)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    v = await visitor(request)
    if v is not None:
        return redirect(home_of(v.who))
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    try:
        form = await read_form(request)
    except FormError:
        return _login_page(request, "form_expired", 400)
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return _login_page(request, "form_expired", 403, form.get("next"), form.get("username", ""))
    engine = state_of(request).engine
    signed = await asyncio.to_thread(
        sign_in, engine, form.get("username", ""), form.get("token", "")
    )
    if signed is None:
        return _login_page(
            request, "sign_in_failed", 401, form.get("next"), form.get("username", "")
        )
    session, who = signed
    response = redirect(local_path(form.get("next"), home_of(who)))
    set_session_cookie(response, request, session)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    v = await visitor(request)
    try:
        form = await read_form(request)
    except FormError:
        form = {}
    if v is not None and not check_csrf(v, form):
        return error_page(request, v, 403, "form_expired")
    session = session_of(request)
    if session is not None:
        await asyncio.to_thread(sign_out, state_of(request).engine, session)
        state_of(request).tokens.clear()
    response = redirect("/login?signed_out=1")
    clear_session_cookie(response, request)
    return response


@router.get("/lang/{code}")
async def switch_language(code: str, request: Request) -> Response:
    response = redirect(local_path(request.query_params.get("next"), "/"))
    if code in LANGS:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, path="/", samesite="lax")
    return response


@router.get("/no-pages")
async def no_pages(request: Request) -> Response:
    v = await visitor(request)
    if v is None:
        return redirect("/login")
    return page(request, "no_pages.html", v.who, v.csrf)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(
        STATIC / name,
        media_type=kind,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
