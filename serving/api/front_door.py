"""The front door: answers the busiest routes by itself, before FastAPI (thousands a second).

Contract: :class:`FrontDoor` is an ASGI middleware that answers, by itself, the
well-formed requests of

* ``GET /api/v1/risk-lists/me``, ``…/workers/{worker_id}``,
  ``…/districts/{district}/towns/{town}``, ``…/districts/{district}``;
* ``GET /api/v1/persons/{person_id}/explanation``;
* ``POST /api/v1/score/features``.

It calls the same functions as the FastAPI routes (:mod:`serving.api.readers`), so
scope, 404s, audit and the JSON are identical; what it skips is FastAPI's
route matching, dependency solving and pydantic parsing (together most of a
request's cost). Anything it is not sure about — no or unknown token, a role
that is refused, an unknown or malformed query parameter, a body that is not
plain JSON of the documented shape — is passed, untouched (the body is
replayed), to the FastAPI app, which gives the documented answer or error.
The OpenAPI document is FastAPI's: the routes are declared there as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, get_args
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from features.config import Outcome
from serving import auth
from serving.api import readers
from serving.api.errors import ApiError, body, unexpected
from serving.api.schemas import OFFSET_MAX, PAGE_MAX, AlertKind, BandCode, CohortKind
from serving.auth import Principal

log = logging.getLogger("sunflower.serving")

OUTCOMES = frozenset(get_args(Outcome))
BANDS = frozenset(get_args(BandCode))
ALERTS = frozenset(get_args(AlertKind))
COHORTS = frozenset(get_args(CohortKind))
PERSON_READERS = frozenset(auth.PERSON_READERS)
SCORERS = frozenset(auth.SCORERS)
LIST_KEYS = frozenset(
    {"date", "outcome", "band", "alert", "any_alert", "cohort", "limit", "offset"}
)
JSON_HEADERS = [(b"content-type", b"application/json")]
NUMBERS = frozenset({float, int})


class _Route:
    """What the metrics middleware reads from ``scope["route"]``."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


class Pass(Exception):
    """Not for the front door: hand the request to FastAPI."""


Handler = Callable[[Any, Principal, list[str], str], Awaitable[bytes]]


class FrontDoor:
    def __init__(self, app: ASGIApp, prefix: str = "/api/v1") -> None:
        self.app = app
        self.prefix = prefix
        self.routes = {
            name: _Route(prefix + template)
            for name, template in (
                ("me", "/risk-lists/me"),
                ("worker", "/risk-lists/workers/{worker_id}"),
                ("town", "/risk-lists/districts/{district}/towns/{town}"),
                ("district", "/risk-lists/districts/{district}"),
                ("explanation", "/persons/{person_id}/explanation"),
                ("score", "/score/features"),
            )
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        method, parts = scope["method"], scope["path"][len(self.prefix) :].split("/")
        try:
            if method == "GET":
                await self._get(scope, parts, send)
                return
            if method == "POST" and parts == ["", "score", "features"]:
                raw = await _read_body(receive)
                if raw is None:
                    return  # the client went away
                receive = _replay(raw, receive)
                await self._score(scope, raw, send)
                return
        except Pass:
            pass
        await self.app(scope, receive, send)

    async def _get(self, scope: Scope, parts: list[str], send: Send) -> None:
        n = len(parts)
        if n >= 3 and parts[1] == "risk-lists" and all(parts[2:]):
            if n == 3 and parts[2] == "me":
                route, kind = "me", "me"
            elif n == 4 and parts[2] == "workers":
                route, kind = "worker", "worker"
            elif n == 6 and parts[2] == "districts" and parts[4] == "towns":
                route, kind = "town", "town"
            elif n == 4 and parts[2] == "districts":
                route, kind = "district", "district"
            else:
                raise Pass
            who = _principal(scope, PERSON_READERS)
            args = _list_args(scope)
            scope["route"] = self.routes[route]
            await _answer(send, _list(scope, who, args, kind, parts))
            return
        if n == 4 and parts[1] == "persons" and parts[3] == "explanation" and parts[2]:
            who = _principal(scope, PERSON_READERS)
            outcome, day = _explanation_args(scope)
            scope["route"] = self.routes["explanation"]
            state = scope["app"].state.service
            await _answer(send, readers.explanation(state, who, parts[2], outcome, day))
            return
        raise Pass

    async def _score(self, scope: Scope, raw: bytes, send: Send) -> None:
        who = _principal(scope, SCORERS)
        if not _header(scope, b"content-type").startswith(b"application/json"):
            raise Pass
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Pass from None
        if not isinstance(doc, dict) or not doc.keys() <= {"features", "outcomes"}:
            raise Pass
        features, outcomes = doc.get("features"), doc.get("outcomes")
        # numbers only (JSON ints and floats; FastAPI's coercion of anything else is its own)
        if type(features) is not dict or not set(map(type, features.values())) <= NUMBERS:
            raise Pass
        if outcomes is not None and (
            type(outcomes) is not list
            or not all(type(o) is str and o in OUTCOMES for o in outcomes)
        ):
            raise Pass
        scope["route"] = self.routes["score"]
        state = scope["app"].state.service
        await _answer(send, readers.score_features(state, who, features, outcomes))


async def _list(
    scope: Scope, who: Principal, args: readers.ListArgs, kind: str, parts: list[str]
) -> bytes:
    state = scope["app"].state.service
    if kind == "me":
        if who.worker_id is None:
            raise ApiError(
                404, "not_found", "this account has no caseload; use a town or district list"
            )
        cond: readers.Eqs = (("worker_id", who.worker_id),)
        name, rank = f"worker:{who.worker_id}", "rank_caseload"
    elif kind == "worker":
        cond, name, rank = (("worker_id", parts[3]),), f"worker:{parts[3]}", "rank_caseload"
    elif kind == "town":
        cond = (("district", parts[3]), ("town", parts[5]))
        name, rank = f"town:{parts[3]}/{parts[5]}", "rank_town"
    else:
        cond, name, rank = (("district", parts[3]),), f"district:{parts[3]}", "rank_district"
    return await readers.risk_list(state, who, args, name, cond, rank)


async def _answer(send: Send, work: Awaitable[bytes]) -> None:
    """Send the bytes ``work`` produces, or the JSON error it raises."""
    status, extra = 200, {}
    try:
        payload = await work
    except Exception as exc:
        error = exc if isinstance(exc, ApiError) else unexpected(exc, "the front door")
        status, extra = error.status, error.headers
        payload = orjson.dumps(body(error.code, error.message, error.fields))
    headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


def _principal(scope: Scope, roles: frozenset[str]) -> Principal:
    app = scope.get("app")
    state = getattr(getattr(app, "state", None), "service", None)
    if state is None:
        raise Pass
    scheme, _, token = _header(scope, b"authorization").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Pass
    who = state.tokens.resolve(token)
    if not isinstance(who, Principal) or who.role not in roles:
        raise Pass  # FastAPI says 401 / 403 in its words
    return who


def _pairs(scope: Scope) -> list[tuple[str, str]]:
    qs = scope.get("query_string", b"")
    return parse_qsl(qs.decode("latin-1"), keep_blank_values=True) if qs else []


def _day(text: str) -> date:
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise Pass
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Pass from None


def _count(text: str, low: int, high: int) -> int:
    if (
        not (text.isascii() and text.isdigit())
        or (len(text) > 1 and text[0] == "0")
        or len(text) > len(str(high))
    ):
        raise Pass
    value = int(text)
    if not low <= value <= high:
        raise Pass
    return value


def _list_args(scope: Scope) -> readers.ListArgs:
    single: dict[str, str] = {}
    bands: list[str] = []
    for key, value in _pairs(scope):
        if key == "band":
            if value not in BANDS:
                raise Pass
            bands.append(value)
        elif key not in LIST_KEYS or key in single:
            raise Pass
        else:
            single[key] = value
    outcome = single.get("outcome", "relapse")
    alert, cohort = single.get("alert"), single.get("cohort")
    flag = single.get("any_alert", "false")
    if (
        outcome not in OUTCOMES
        or (alert is not None and alert not in ALERTS)
        or (cohort is not None and cohort not in COHORTS)
        or flag not in ("true", "false")
    ):
        raise Pass
    return readers.ListArgs(
        day=_day(single["date"]) if "date" in single else None,
        outcome=outcome,
        bands=tuple(bands),
        alert=alert,
        any_alert=flag == "true",
        cohort=cohort,
        limit=_count(single.get("limit", "25"), 1, PAGE_MAX),
        offset=_count(single.get("offset", "0"), 0, OFFSET_MAX),
    )


def _explanation_args(scope: Scope) -> tuple[str, date | None]:
    found = dict(_pairs(scope))  # like FastAPI: the last value of a repeated key
    outcome = found.get("outcome", "relapse")
    if outcome not in OUTCOMES:
        raise Pass
    return outcome, _day(found["date"]) if "date" in found else None


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(raw: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return again
