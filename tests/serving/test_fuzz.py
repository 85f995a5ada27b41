"""Property-based fuzzing of every API operation, for every role (issue 15).

The operations, their parameters, bodies and documented statuses come from the
app's own OpenAPI document. Hypothesis draws each parameter and body from a mix
of well-formed values (the schema's enums, in-range numbers, ids of the
district) and hostile ones (huge and negative numbers, NUL and ESC, path
characters, formula prefixes, 10,000-character text, nested JSON, non-finite
numbers), sends them over HTTP with one of the accounts' tokens (or none), and
checks: no 5xx, a status the operation documents, and a JSON body that matches
the documented schema of that status.

``FUZZ_EXAMPLES`` sets examples per operation (default 25 in ``make test``);
``-m slow`` adds a deeper run (400 per operation) that CI still runs. Each run
adds its figures to ``FUZZ_LOG`` when that is set (requests, statuses).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.app import create_app
from serving.settings import get_settings
from tests.serving.conftest import ACCOUNTS, Scored, client_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
DEEP_EXAMPLES = int(os.environ.get("FUZZ_DEEP_EXAMPLES", "400"))


def _document() -> dict[str, Any]:
    app = create_app(get_settings(database_url="sqlite://", home="/nonexistent"))
    return app.openapi()


DOC = _document()
OPERATIONS = [
    (method.upper(), path)
    for path, ops in DOC["paths"].items()
    for method in ops
    if method in ("get", "post", "put", "patch", "delete")
]

# -- values -----------------------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "p-01\x00",
        "\x1b[31m",
        "a/b",
        "..",
        "%2F",
        "=cmd|' /C calc'!A0",
        "+1",
        "@SUM(1)",
        "null",
        "true",
        "Infinity",
        "-Infinity",
        "NaN",
        "1e308",
        "99999999999999999999",
        "-99999999999999999999",
        "0001-01-01",
        "9999-12-31",
        "2025-06-01T00:00:00+14:00",
        "2025-06-01T00:00:00Z",
        "2025-02-30",
        "东镇" * 50,
        "x" * 10_000,
        "9" * 5000,
        "\u202e",
        "{}",
        "[]",
    ]
)
KNOWN_TEXT = st.sampled_from(
    ["p-01", "p-04", "p-06", "p-99", "w-1", "w-2", "示例区", "东镇", "西镇", "relapse", "lab"]
)
HUGE_INTS = st.sampled_from([-(10**20), -1, 0, 10**20, 2**63, -(2**63) - 1])


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return _resolve(DOC["components"]["schemas"][ref.rsplit("/", 1)[1]])
    return schema


def _param_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """A query or path value: valid for the schema, or hostile text."""
    schema = _resolve(schema)
    valid: list[st.SearchStrategy[Any]] = []
    for alt in [schema, *schema.get("anyOf", []), *schema.get("items", {}).get("anyOf", [])]:
        alt = _resolve(alt)
        if "enum" in alt:
            valid.append(st.sampled_from(alt["enum"]))
        kind = alt.get("type")
        if kind == "integer":
            valid.append(st.integers(alt.get("minimum", -5), alt.get("maximum", 10**7)))
        elif kind == "boolean":
            valid.append(st.sampled_from(["true", "false", "1", "no"]))
        elif kind == "string" and alt.get("format") == "date":
            valid.append(st.dates().map(str))
        elif kind == "string" and alt.get("format") == "date-time":
            valid.append(st.datetimes().map(lambda d: d.isoformat()))
        elif kind == "array":
            items = _resolve(alt.get("items", {}))
            if "enum" in items:
                valid.append(st.sampled_from(items["enum"]))
    valid.append(KNOWN_TEXT)
    return st.one_of(*valid, HOSTILE_TEXT, HUGE_INTS, st.text(max_size=30)).map(str)


JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_TEXT,
    KNOWN_TEXT,
    st.text(max_size=20),
)
ANY_JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _body_value(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """A JSON body shaped like ``schema`` with hostile leaves, or any JSON at all."""
    schema = _resolve(schema)
    if depth > 3:
        return ANY_JSON
    props = schema.get("properties")
    if props:
        fields = {name: _body_value(sub, depth + 1) for name, sub in props.items()}
        shaped = st.fixed_dictionaries({}, optional=fields)
        return st.one_of(shaped, shaped, ANY_JSON)
    if schema.get("type") == "array":
        return st.lists(_body_value(schema.get("items", {}), depth + 1), max_size=3)
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), JSON_LEAF)
    if schema.get("type") == "object" or "additionalProperties" in schema:
        row = st.dictionaries(
            st.sampled_from(
                [
                    "person_id",
                    "event_id",
                    "ts",
                    "type",
                    "value",
                    "town",
                    "birth_year",
                    "program_start",
                    "employed_now",
                    "checkins_missed_90d",
                ]
            ),
            JSON_LEAF,
            max_size=6,
        )
        return st.one_of(row, ANY_JSON)
    return JSON_LEAF


REQUESTS: dict[tuple[str, str], st.SearchStrategy[dict[str, Any]]] = {}


def _request(method: str, path: str) -> st.SearchStrategy[dict[str, Any]]:
    """A strategy for one request of the operation: path, query, body, account."""
    op = DOC["paths"][path][method.lower()]
    params = op.get("parameters", [])
    path_params = {p["name"]: _param_value(p["schema"]) for p in params if p["in"] == "path"}
    query_params = {p["name"]: _param_value(p["schema"]) for p in params if p["in"] == "query"}
    body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    body = _body_value(body_schema.get("schema", {})) if body_schema else st.just(None)
    return st.fixed_dictionaries(
        {
            "path": st.fixed_dictionaries(path_params),
            "query": st.fixed_dictionaries({}, optional=query_params),
            "body": body,
            "account": st.sampled_from([*ACCOUNTS, None]),
        }
    )


# -- the check ----------------------------------------------------------------------------------

STATS: Counter[str] = Counter()


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    full = {**schema, "components": DOC["components"]}
    return jsonschema.Draft202012Validator(full)


def _send(client: TestClient, s: Scored, method: str, path: str, req: dict[str, Any]):
    url = path
    for name, value in req["path"].items():
        url = url.replace("{" + name + "}", quote(value, safe=""))
    headers = {}
    if req["account"] is not None:
        headers["Authorization"] = f"Bearer {s.tokens[req['account']]}"
    kwargs: dict[str, Any] = {"params": req["query"], "headers": headers}
    if req["body"] is not None:
        kwargs["content"] = json.dumps(req["body"], allow_nan=True).encode()
        headers["Content-Type"] = "application/json"
    return client.request(method, url, **kwargs)


def check(client: TestClient, s: Scored, method: str, path: str, req: dict[str, Any]) -> None:
    r = _send(client, s, method, path, req)
    STATS["requests"] += 1
    STATS[f"status {r.status_code}"] += 1
    assert (
        r.status_code < 500
        or r.status_code == 503
        and r.json()["error"]["code"]
        in (
            "models_not_ready",
            "busy",
        )
    ), (method, path, req, r.status_code, r.text[:500])
    documented = DOC["paths"][path][method.lower()]["responses"]
    assert str(r.status_code) in documented, (method, path, r.status_code, r.text[:300])
    content = documented[str(r.status_code)].get("content", {})
    kind = r.headers.get("content-type", "")
    if "application/json" in content and kind.startswith("application/json"):
        schema = content["application/json"].get("schema")
        if schema:
            errors = sorted(_validator(schema).iter_errors(r.json()), key=str)
            assert not errors, (method, path, r.status_code, [e.message for e in errors][:3])


@pytest.fixture(scope="module")
def fuzz_client(scored: Scored) -> Iterator[TestClient]:
    with client_for(scored) as client:
        yield client


def _slug(op: tuple[str, str]) -> str:
    return op[0] + re.sub(r"[^a-z0-9]+", "_", op[1].lower())


def _run(client: TestClient, s: Scored, op: tuple[str, str], n: int) -> None:
    method, path = op

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(_request(method, path))
    def one(req: dict[str, Any]) -> None:
        check(client, s, method, path, req)

    one()
    log = os.environ.get("FUZZ_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"op": f"{method} {path}", **STATS}) + "\n")


@pytest.mark.parametrize("op", OPERATIONS, ids=_slug)
def test_no_5xx_and_only_documented_answers(fuzz_client, scored, op):
    _run(fuzz_client, scored, op, EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("op", OPERATIONS, ids=_slug)
def test_no_5xx_and_only_documented_answers_deep(fuzz_client, scored, op):
    _run(fuzz_client, scored, op, DEEP_EXAMPLES)
