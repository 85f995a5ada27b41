"""At the door: no control character in a URL reaches a route; every answer has safe headers.

Contract: :class:`SafeHeaders` gives every response that does not set its own
``Cache-Control: no-store`` (person data must not be kept by a browser or a
proxy), ``X-Content-Type-Options: nosniff`` and, for anything but a page of ours
(which sets a stricter policy of its own), ``Content-Security-Policy:
default-src 'none'; frame-ancestors 'none'`` — JSON and CSV run nothing. Static
files keep their own cache header.

:class:`ControlCharacters` is an ASGI middleware in front of every route (API
and pages; not ``/healthz``, ``/readyz``, ``/metrics``, which take no input).
A request whose decoded path or any decoded query name or value contains one of
:data:`features.contract.CONTROL_CHARACTERS` (NUL, ESC, line breaks, C1, bidi
overrides) is answered 422 ``invalid_request`` naming ``path`` or
``query.<name>``, before any route, scope check, audit or query runs. Stored data
cannot hold these characters (the input contract rejects them), so nothing
reachable is refused; PostgreSQL refuses NUL in any string, which made such a
request a 500 there.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from features.contract import CONTROL_CHARACTERS
from serving.api.errors import body

_CONTROL = re.compile(CONTROL_CHARACTERS)
#: Routes without input (and probes that must answer whatever they are sent).
UNGUARDED = frozenset({"/healthz", "/readyz", "/metrics"})


def offending_fields(path: str, query: bytes) -> list[str]:
    """The parts of a request that hold a control character (``path``, ``query.<name>``)."""
    fields = ["path"] if _CONTROL.search(path) else []
    if query:
        text = query.decode("latin-1")
        for name, value in parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", errors="replace"
        ):
            if _CONTROL.search(name) or _CONTROL.search(value):
                fields.append(f"query.{_CONTROL.sub('?', name)}")
    return fields


SAFE_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


class SafeHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(k).lower() for k, _ in headers}
                headers += [(k, v) for k, v in SAFE_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class ControlCharacters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in UNGUARDED:
            fields = offending_fields(scope["path"], scope.get("query_string", b""))
            if fields:
                payload = orjson.dumps(
                    body(
                        "invalid_request",
                        "control characters are not allowed in a URL: " + ", ".join(fields),
                        [{"field": f, "message": "contains a control character"} for f in fields],
                    )
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 422,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
                return
        await self.app(scope, receive, send)
