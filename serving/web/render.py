"""Rendering pages: one Jinja environment, the common context, safe response headers.

Contract: :func:`page` renders a template from ``serving/web/templates`` with
the request's language (``t``, ``lang``, ``html_lang``), the signed-in account
(``who``), its CSRF token (``csrf``) and the caller's values, and returns an
HTML response that is never cached (pages hold person data) and carries a
strict Content-Security-Policy: scripts, styles and images only from this
server, no inline script, no frames. Templates autoescape everything.
:func:`local_path` keeps a ``next`` redirect on this site.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from features.config import OUTCOMES
from serving import queries
from serving.auth import Principal
from serving.bands import BAND_NAMES, THRESHOLDS
from serving.web import reasons

from . import words
from .i18n import HTML_LANG, LANG_COOKIE, ROLE_KEYS, lang_of, translator

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["words"] = words
    env.globals["band_names"] = {level: (zh, en) for level, (_, zh, en) in BAND_NAMES.items()}
    env.globals["reasons"] = reasons
    env.globals["thresholds"] = THRESHOLDS
    env.globals["role_keys"] = set(ROLE_KEYS.values())
    env.globals["all_outcomes"] = OUTCOMES
    env.filters["num"] = number
    return env


def shown_horizon(request: Request) -> str:
    """The horizon (days) of the probabilities the pages show: the latest published run's
    champions' (``score_runs.models``), else the district's label configuration."""
    state = getattr(request.app.state, "service", None)
    if state is None:  # an error page before the service started
        return queries.horizon_text(None)
    with state.engine.connect() as conn:
        return queries.horizon_text(queries.run_for(conn, None))


def number(value: float | None) -> str:
    """A count as an integer, anything else with one decimal."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def page(
    request: Request,
    template: str,
    who: Principal | None,
    csrf: str | None = None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """An HTML page in the request's language."""
    lang = lang_of(request)
    t = translator(lang, shown_horizon(request))
    kept = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"])
    here = request.url.path + (f"?{kept}" if kept else "")
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            path=request.url.path,
            here=here,
            t=t,
            lang=lang,
            other_lang="en" if lang == "zh" else "zh",
            html_lang=HTML_LANG[lang],
            who=who,
            role_name=t(ROLE_KEYS[who.role]) if who else "",
            csrf=csrf,
            today=date.today(),
            **values,
        )
    )
    response = HTMLResponse(html, status_code=status_code, headers=HEADERS)
    chosen = request.query_params.get("lang")
    if chosen in HTML_LANG:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, path="/", samesite="lax")
    return response


def local_path(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site (no scheme, host or ``//``), else ``default``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
