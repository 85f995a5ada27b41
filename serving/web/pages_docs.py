"""``/docs``: the API reference as a page of this server, from the app's OpenAPI document.

Contract: the page lists every operation (method, path, summary, parameters with
their types and bounds, the body's schema, every documented status) and links the
machine-readable document at ``/api/v1/openapi.json``. It is rendered like every
other page (:func:`serving.web.render.page`: strict CSP, no-store, nosniff) and
loads nothing from outside this server — FastAPI's Swagger UI and ReDoc, which
fetch their script and CSS from a public CDN on the session cookie's origin, are
off. The document holds no person data, so the page needs no sign-in.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from .render import page
from .visitor import visitor

router = APIRouter()


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _bounds(schema: dict[str, Any]) -> str:
    words = [
        f"{word} {schema[key]}"
        for key, word in (
            ("minimum", "≥"),
            ("maximum", "≤"),
            ("minLength", "length ≥"),
            ("maxLength", "length ≤"),
        )
        if key in schema
    ]
    if "default" in schema:
        words.append(f"default {schema['default']}")
    return ", ".join(words)


def _schema_of(part: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of a request body or response (its first content type), if any."""
    for content in part.get("content", {}).values():
        schema = content.get("schema")
        return schema if isinstance(schema, dict) and schema else None
    return None


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations of an OpenAPI document, as the template shows them."""
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            body = _schema_of(op.get("requestBody", {}))
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "anchor": re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-"),
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "where": p["in"],
                            "type": _type(p.get("schema", {})),
                            "required": p.get("required", False),
                            "notes": _bounds(p.get("schema", {})),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": _type(body) if body else "",
                    "responses": [
                        (code, r.get("description", ""), _type(m) if (m := _schema_of(r)) else "")
                        for code, r in sorted(op.get("responses", {}).items())
                    ],
                }
            )
    return out


@router.get("/docs")
async def api_docs(request: Request) -> Response:
    doc = request.app.openapi()
    v = await visitor(request)
    return page(
        request,
        "api_docs.html",
        v.who if v else None,
        v.csrf if v else None,
        title=doc["info"]["title"],
        description=[
            line.strip() for line in doc["info"].get("description", "").splitlines() if line.strip()
        ],
        openapi_url=request.app.openapi_url,
        operations=operations(doc),
    )
