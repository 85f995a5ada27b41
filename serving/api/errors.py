"""JSON errors: every failure is ``{"error": {"code", "message", "fields"}}``.

Contract: :class:`ApiError` is what routes raise; request validation errors
become 422 with one ``fields`` entry per problem, named like ``query.limit`` or
``body.changes.employed_now``; unknown routes and methods keep their 404/405;
anything unexpected is a 500 with a generic message (the cause goes to the
log, never a person's data to the client) — except a busy database (a lock
held longer than ``db_busy_seconds``, see :func:`serving.db.is_busy`), which is
a 503 ``busy`` with ``Retry-After``. :data:`ERROR_RESPONSES` documents the
shapes in OpenAPI.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.api.schemas import ErrorOut
from serving.db import is_busy

log = logging.getLogger("sunflower.serving")


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a message for the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []
        self.headers = headers or {}


#: What a client is told to wait after a 503 ``busy`` (seconds).
RETRY_AFTER_SECONDS = 5


def busy() -> ApiError:
    """The answer when the database stayed locked longer than ``db_busy_seconds``."""
    return ApiError(
        503,
        "busy",
        "the database is busy (another writer holds a lock); nothing was shown or changed; "
        f"try again in {RETRY_AFTER_SECONDS} s",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def unexpected(exc: BaseException, where: str) -> ApiError:
    """What an unhandled ``exc`` becomes: 503 ``busy`` for a busy database, else 500.

    Logs the exception's type only for a busy database, and the traceback otherwise
    (``where`` is a route template, never a path with ids; :mod:`serving.logs` keeps
    exception messages out).
    """
    if is_busy(exc):
        log.warning("database busy on %s (%s)", where, type(exc).__name__)
        return busy()
    log.exception("unhandled error on %s", where, exc_info=exc)
    return ApiError(500, "internal_error", "internal error; the server log has the details")


def json_response(content: Any, status_code: int = 200, headers: Any = None) -> Response:
    """JSON via orjson (dates and datetimes as ISO 8601)."""
    return Response(
        orjson.dumps(content),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def not_found(what: str = "person") -> ApiError:
    return ApiError(404, "not_found", f"no such {what} (or not in your scope)")


def body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or []}}


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api(_req: Request, exc: ApiError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> Response:
        fields = [
            {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        names = ", ".join(f["field"] for f in fields)
        return json_response(
            body("invalid_request", f"invalid value(s): {names}", fields), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # a body FastAPI cannot decode: one documented 422
            fields = [{"field": "body", "message": "not UTF-8 JSON"}]
            return json_response(
                body("invalid_request", "the body is not UTF-8 JSON", fields), status_code=422
            )
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        return json_response(
            body(code.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _crash(req: Request, exc: Exception) -> Response:
        route = getattr(req.scope.get("route"), "path", "an unmatched path")
        return error_response(unexpected(exc, f"{req.method} {route}"))


def error_response(exc: ApiError) -> Response:
    """The JSON error body of ``exc``, with its status and headers."""
    return json_response(
        body(exc.code, exc.message, exc.fields), status_code=exc.status, headers=exc.headers
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or unknown bearer token"},
    403: {"model": ErrorOut, "description": "your role may not use this route"},
    404: {"model": ErrorOut, "description": "not found, or not in your scope"},
    422: {"model": ErrorOut, "description": "a field is invalid; `fields` names it"},
    503: {
        "model": ErrorOut,
        "description": "`busy`: the database stayed locked; retry after `Retry-After` seconds",
    },
}
