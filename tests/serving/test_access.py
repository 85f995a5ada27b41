"""Who may read what: every role against every person-level and aggregate route."""

from __future__ import annotations

import pytest

from tests.serving.conftest import ROLES_OF, auth

# p-01 belongs to w-1 in 东镇; p-04 to w-2 in 东镇; p-07 to w-3 in 西镇.
SEES = {
    "w1": {"p-01"},
    "w2": {"p-04"},
    "sup_east": {"p-01", "p-04"},
    "sup_district": {"p-01", "p-04", "p-07"},
    "owner": set(),
    "integ": set(),
    "admin": {"p-01", "p-04", "p-07"},
}
PERSON_ROUTES = [
    "/api/v1/persons/{pid}",
    "/api/v1/persons/{pid}/history",
    "/api/v1/persons/{pid}/timeline",
    "/api/v1/persons/{pid}/explanation",
    "/api/v1/persons/{pid}/explanation?outcome=loss_of_contact",
    "/api/v1/persons/{pid}/what-if/inputs",
    "/api/v1/persons/{pid}/actions",
]


@pytest.mark.parametrize("name", list(SEES))
@pytest.mark.parametrize("pid", ["p-01", "p-04", "p-07"])
@pytest.mark.parametrize("route", PERSON_ROUTES)
def test_person_reads_follow_scope(api, scored, name, pid, route):
    r = api.get(route.format(pid=pid), headers=auth(scored.tokens, name))
    if pid in SEES[name]:
        assert r.status_code == 200, r.text
    elif ROLES_OF[name] in ("model_owner", "integrator"):
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
    else:
        assert r.status_code == 404
        missing = api.get(route.format(pid="p-nobody"), headers=auth(scored.tokens, name))
        assert (missing.status_code, missing.json()) == (404, r.json())


@pytest.mark.parametrize(
    ("name", "path", "status"),
    [
        ("w1", "/api/v1/risk-lists/me", 200),
        ("w1", "/api/v1/risk-lists/workers/w-1", 200),
        ("w1", "/api/v1/risk-lists/workers/w-2", 404),
        ("w1", "/api/v1/risk-lists/workers/w-nobody", 404),
        ("w1", "/api/v1/risk-lists/districts/示例区/towns/东镇", 200),  # their own people only
        ("w2", "/api/v1/risk-lists/districts/示例区/towns/西镇", 404),
        ("sup_east", "/api/v1/risk-lists/workers/w-2", 200),
        ("sup_east", "/api/v1/risk-lists/workers/w-3", 404),
        ("sup_east", "/api/v1/risk-lists/districts/示例区/towns/西镇", 404),
        ("sup_east", "/api/v1/risk-lists/me", 404),
        ("sup_district", "/api/v1/risk-lists/districts/示例区/towns/西镇", 200),
        ("sup_district", "/api/v1/risk-lists/districts/示例区", 200),
        ("sup_district", "/api/v1/risk-lists/districts/别的区", 404),
        ("admin", "/api/v1/risk-lists/workers/w-3", 200),
        ("owner", "/api/v1/risk-lists/districts/示例区", 403),
        ("integ", "/api/v1/risk-lists/workers/w-1", 403),
        ("owner", "/api/v1/models", 200),
        ("owner", "/api/v1/aggregates", 200),
        ("owner", "/api/v1/kpis", 200),
        ("owner", "/api/v1/runs", 200),
        ("w1", "/api/v1/aggregates", 403),
        ("w1", "/api/v1/kpis", 403),
        ("sup_east", "/api/v1/kpis", 200),
        ("owner", "/api/v1/groups?district=示例区", 403),
        ("sup_east", "/api/v1/groups?district=示例区&town=西镇", 404),
        ("sup_district", "/api/v1/groups?district=示例区", 200),
        ("owner", "/api/v1/admin/audit", 403),
        ("sup_district", "/api/v1/admin/audit", 403),
        ("admin", "/api/v1/admin/audit", 200),
        ("admin", "/api/v1/admin/users", 200),
        ("w1", "/api/v1/admin/users", 403),
        ("w1", "/api/v1/exports/risk-list.csv?worker_id=w-2", 404),
        ("w1", "/api/v1/exports/risk-list.csv?worker_id=w-1", 200),
        ("owner", "/api/v1/exports/risk-list.csv?district=示例区", 403),
    ],
)
def test_lists_and_aggregates_by_role(api, scored, name, path, status):
    r = api.get(path, headers=auth(scored.tokens, name))
    assert r.status_code == status, r.text


def test_worker_town_list_holds_only_their_caseload(api, scored):
    r = api.get("/api/v1/risk-lists/districts/示例区/towns/东镇", headers=auth(scored.tokens, "w1"))
    assert {i["worker_id"] for i in r.json()["items"]} == {"w-1"}


def test_supervisor_kpis_are_their_town_only(api, scored):
    r = api.get("/api/v1/kpis", headers=auth(scored.tokens, "sup_east"))
    assert [t["town"] for t in r.json()["towns"]] == ["东镇"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sf_not-a-token"}, {"Authorization": "Basic abc"}],
)
def test_no_valid_token_is_401_json(api, headers):
    r = api.get("/api/v1/risk-lists/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_revoked_token_stops_working(api_fresh, fresh):
    from serving.auth import revoke_tokens

    h = auth(fresh.tokens, "w1")
    assert api_fresh.get("/api/v1/me", headers=h).status_code == 200
    revoke_tokens(fresh.engine, "w1")
    assert api_fresh.get("/api/v1/me", headers=h).status_code == 401


def test_tokens_are_stored_hashed(scored):
    import sqlalchemy as sa

    with scored.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars())
    assert not stored & set(scored.tokens.values())
    assert all(len(h) == 64 for h in stored)
