"""The front door answers exactly like the FastAPI routes it stands in front of."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from serving.api.front_door import FrontDoor
from tests.serving.conftest import Scored, auth, client_for
from tests.serving.fakes import fake_champions

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

W = "/api/v1/risk-lists"
GETS = [
    ("w1", f"{W}/me"),
    ("w1", f"{W}/me?limit=2&offset=1"),
    ("w1", f"{W}/me?outcome=loss_of_contact&band=low&band=high"),
    ("w1", f"{W}/me?alert=positive_test"),
    ("w1", f"{W}/me?any_alert=true"),
    ("w1", f"{W}/me?any_alert=1"),  # not the front door's spelling: FastAPI answers
    ("w1", f"{W}/me?cohort=first_90_days"),
    ("w1", f"{W}/me?date=2025-05-31"),
    ("w1", f"{W}/me?date=2024-01-01"),  # no run that day
    ("w1", f"{W}/me?offset=100"),
    ("w1", f"{W}/me?limit=0"),  # 422 from FastAPI
    ("w1", f"{W}/me?nonsense=1"),  # 422 from FastAPI
    ("w1", f"{W}/workers/w-1"),
    ("w1", f"{W}/workers/w-2"),
    ("w1", f"{W}/districts/示例区/towns/东镇"),
    ("sup_east", f"{W}/me"),
    ("sup_east", f"{W}/districts/示例区/towns/东镇?limit=3"),
    ("sup_east", f"{W}/districts/示例区/towns/西镇"),
    ("sup_district", f"{W}/districts/示例区"),
    ("admin", f"{W}/districts/示例区?band=very_high"),
    ("owner", f"{W}/districts/示例区"),  # 403
    ("w1", "/api/v1/persons/p-01/explanation"),
    ("w1", "/api/v1/persons/p-01/explanation?outcome=loss_of_contact&date=2025-05-31"),
    ("w1", "/api/v1/persons/p-01/explanation?outcome=nonsense"),
    ("w1", "/api/v1/persons/p-04/explanation"),  # out of scope
    ("w1", "/api/v1/persons/p-nobody/explanation"),
    ("sup_district", "/api/v1/persons/p-06/explanation"),  # not in the cohort: not scored
    ("integ", "/api/v1/persons/p-01/explanation"),  # 403
    (None, "/api/v1/persons/p-01/explanation"),  # 401
    ("bogus", f"{W}/me"),  # 401
]


def _without_fast_lane(s: Scored) -> TestClient:
    from serving.app import create_app

    champs = fake_champions()
    app = create_app(s.settings(), loader=lambda o: champs[o])
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FrontDoor]
    return TestClient(app)


@pytest.fixture(scope="module")
def both(scored: Scored) -> Iterator[tuple[TestClient, TestClient]]:
    with client_for(scored) as fast, _without_fast_lane(scored) as slow:
        yield fast, slow


def _headers(scored: Scored, name: str | None) -> dict[str, str]:
    if name is None:
        return {}
    if name == "bogus":
        return {"Authorization": "Bearer sf_not-a-token"}
    return auth(scored.tokens, name)


@pytest.mark.parametrize(("name", "path"), GETS)
def test_gets_are_identical_with_and_without_the_fast_lane(both, scored, name, path):
    fast, slow = both
    h = _headers(scored, name)
    a, b = fast.get(path, headers=h), slow.get(path, headers=h)
    assert (a.status_code, a.json()) == (b.status_code, b.json())
    assert a.headers["content-type"] == b.headers["content-type"]


ROW = dict.fromkeys(fake_champions()["relapse"].feature_names, 1.0)


@pytest.mark.parametrize(
    ("name", "body", "content_type"),
    [
        ("integ", {"features": ROW}, "application/json"),
        ("integ", {"features": {**ROW, "employed_now": 0}, "outcomes": ["relapse"]}, None),
        ("integ", {"features": {**ROW, "nonsense": 1}}, None),  # 422 naming the field
        ("integ", {"features": {k: v for k, v in ROW.items() if k != "prior_detox"}}, None),
        ("integ", {"features": {**ROW, "employed_now": "1"}}, None),  # FastAPI's coercion
        ("integ", {"features": ROW, "outcomes": ["nonsense"]}, None),  # 422
        ("integ", {"features": ROW, "extra": 1}, None),  # 422 (extra forbidden)
        ("admin", {"features": ROW}, None),
        ("w1", {"features": ROW}, None),  # 403
        (None, {"features": ROW}, None),  # 401
    ],
)
def test_adhoc_scoring_is_identical_with_and_without_the_fast_lane(
    both, scored, name, body, content_type
):
    fast, slow = both
    h = _headers(scored, name)
    if content_type:
        h = {**h, "Content-Type": content_type}
    a = fast.post("/api/v1/score/features", headers=h, json=body)
    b = slow.post("/api/v1/score/features", headers=h, json=body)
    assert (a.status_code, a.json()) == (b.status_code, b.json())


def test_a_body_that_is_not_json_goes_to_fastapi(both, scored):
    fast, slow = both
    h = {**auth(scored.tokens, "integ"), "Content-Type": "application/json"}
    a = fast.post("/api/v1/score/features", headers=h, content=b"{not json")
    b = slow.post("/api/v1/score/features", headers=h, content=b"{not json")
    assert (a.status_code, a.json()) == (b.status_code, b.json()) and a.status_code == 422


def test_fast_lane_requests_are_counted_under_their_route_template(both, scored):
    fast, _ = both
    fast.get("/api/v1/persons/p-01/explanation", headers=auth(scored.tokens, "w1"))
    text = fast.get("/metrics").text
    assert 'route="/api/v1/persons/{person_id}/explanation"' in text
    assert "p-01" not in text


def test_revoking_in_process_empties_the_token_cache(fresh):
    from serving.app import create_app
    from serving.auth import revoke_tokens

    champs = fake_champions()
    settings = fresh.settings().model_copy(update={"auth_cache_seconds": 300.0})
    with TestClient(create_app(settings, loader=lambda o: champs[o])) as c:
        h = auth(fresh.tokens, "w1")
        assert c.get(f"{W}/me", headers=h).status_code == 200
        revoke_tokens(fresh.engine, "w1")
        r = c.get(f"{W}/me", headers=h)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
