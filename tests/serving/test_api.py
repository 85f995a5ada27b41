"""Every endpoint over HTTP: lists, person, explanation, what-if, ad-hoc, ingest, actions, ops."""

from __future__ import annotations

import sqlalchemy as sa

from serving.api.schemas import Explanation, ListItem, PersonSummary, Timeline, WhatIfOut
from tests.factories import event, person
from tests.serving.conftest import auth


def test_worker_list_is_ranked_filtered_and_paged(api, scored):
    h = auth(scored.tokens, "w1")
    body = api.get("/api/v1/risk-lists/me", headers=h).json()
    assert body["scope"] == "worker:w-1" and body["total"] == 4
    ranks = [i["rank_caseload"] for i in body["items"]]
    assert ranks == [1, 2, 3, 4]
    ps = [i["p"] for i in body["items"]]
    assert ps == sorted(ps, reverse=True)
    for item in body["items"]:
        ListItem.model_validate(item)
    page = api.get("/api/v1/risk-lists/me?limit=2&offset=2", headers=h).json()
    assert [i["person_id"] for i in page["items"]] == [i["person_id"] for i in body["items"][2:]]
    assert page["total"] == 4
    lost = api.get("/api/v1/risk-lists/me?outcome=loss_of_contact", headers=h).json()
    assert {i["outcome"] for i in lost["items"]} == {"loss_of_contact"}
    alert = api.get("/api/v1/risk-lists/me?alert=positive_test", headers=h).json()
    assert [i["person_id"] for i in alert["items"]] == ["p-01"]
    anyalert = api.get("/api/v1/risk-lists/me?any_alert=true", headers=h).json()
    assert {i["person_id"] for i in anyalert["items"]} == {"p-01", "p-02", "p-03"}
    top = api.get("/api/v1/risk-lists/me?band=very_high", headers=h).json()
    assert all(i["band"]["code"] == "very_high" for i in top["items"])
    old = api.get("/api/v1/risk-lists/me?date=2025-05-31", headers=h).json()
    assert old["as_of"] == "2025-05-31"
    none = api.get("/api/v1/risk-lists/me?date=2020-01-01", headers=h)
    assert none.status_code == 404 and none.json()["error"]["code"] == "no_run"


def test_town_list_and_cohort_filter(api, scored):
    h = auth(scored.tokens, "sup_district")
    west = api.get("/api/v1/risk-lists/districts/示例区/towns/西镇", headers=h).json()
    assert [i["rank_town"] for i in west["items"]] == [1, 2]
    ending = api.get(
        "/api/v1/risk-lists/districts/示例区?cohort=agreement_ending", headers=h
    ).json()
    assert [i["person_id"] for i in ending["items"]] == ["p-07"]


def test_explanation_is_identical_to_what_the_list_showed(api, scored):
    h = auth(scored.tokens, "w1")
    for outcome in ("relapse", "loss_of_contact"):
        items = api.get(f"/api/v1/risk-lists/me?outcome={outcome}", headers=h).json()["items"]
        for item in items:
            r = api.get(
                f"/api/v1/persons/{item['person_id']}/explanation?outcome={outcome}", headers=h
            )
            expl = Explanation.model_validate(r.json())
            assert expl.drivers[0].model_dump() == item["top_driver"]
            assert (expl.p, expl.band.level, expl.model.version) == (
                item["p"],
                item["band"]["level"],
                item["model"]["version"],
            )
            assert expl.plan_items and expl.base_value is not None


def test_person_history_timeline(api, scored):
    h = auth(scored.tokens, "w1")
    summary = PersonSummary.model_validate(api.get("/api/v1/persons/p-01", headers=h).json())
    assert {s.outcome for s in summary.scores} == {"relapse", "loss_of_contact"}
    assert [a.kind for a in summary.alerts] == ["positive_test"]
    hist = api.get("/api/v1/persons/p-01/history?outcome=relapse", headers=h).json()
    assert [p["as_of"] for p in hist] == ["2025-05-31", "2025-06-01"]
    tl = Timeline.model_validate(api.get("/api/v1/persons/p-01/timeline", headers=h).json())
    assert tl.items[0].type == "urine_test" and tl.items[0].result == "positive"


def test_what_if_changes_the_score_and_stores_nothing(api, scored):
    h = auth(scored.tokens, "w1")

    def count():
        with scored.engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM scores")).scalar()

    n = count()
    inputs = api.get("/api/v1/persons/p-01/what-if/inputs", headers=h).json()["inputs"]
    assert "employed_now" in {i["feature"] for i in inputs}
    r = api.post(
        "/api/v1/persons/p-01/what-if",
        headers=h,
        json={"changes": {"employed_now": 1, "home_visits_30d": 2}, "outcome": "relapse"},
    )
    out = WhatIfOut.model_validate(r.json())
    (res,) = out.results
    stored = api.get("/api/v1/persons/p-01/explanation", headers=h).json()
    assert res.before.p == stored["p"]
    assert res.after.p < res.before.p and res.change < 0
    assert count() == n
    bad = api.post(
        "/api/v1/persons/p-01/what-if", headers=h, json={"changes": {"age": 30, "employed_now": -1}}
    )
    assert bad.status_code == 422
    fields = {f["field"] for f in bad.json()["error"]["fields"]}
    assert fields == {"body.changes.age", "body.changes.employed_now"}


def test_adhoc_feature_row(api, scored):
    h = auth(scored.tokens, "integ")
    row = {
        "checkins_missed_90d": 2,
        "tests_positive_365d": 0,
        "employed_now": 0,
        "home_visits_30d": 1,
        "prior_detox": 1,
        "days_since_contact": 10,
        "medicine_purchases_30d": 0,
    }
    r = api.post("/api/v1/score/features", headers=h, json={"features": row})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["outcome"] for x in results] == ["relapse", "loss_of_contact"]
    assert results[0]["drivers"][0]["feature"] == "checkins_missed_90d"
    r = api.post(
        "/api/v1/score/features",
        headers=h,
        json={"features": {**row, "nonsense": 1}, "outcomes": ["relapse"]},
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "body.features.nonsense"
    missing = dict(row)
    missing.pop("prior_detox")
    r = api.post("/api/v1/score/features", headers=h, json={"features": missing})
    assert r.json()["error"]["fields"][0]["field"] == "body.features.prior_detox"
    assert (
        api.post(
            "/api/v1/score/features", headers=auth(scored.tokens, "w1"), json={"features": row}
        ).status_code
        == 403
    )


def test_adhoc_person_history(api, scored):
    h = auth(scored.tokens, "integ")
    body = {
        "person": person(person_id="p-adhoc"),
        "events": [
            event("x1", "2025-05-02T09:00:00", "check_in", "p-adhoc", "missed"),
            event("x2", "2025-05-03T09:00:00", "urine_test", "p-adhoc", "positive"),
        ],
        "as_of": "2025-06-01",
    }
    r = api.post("/api/v1/score/history", headers=h, json=body)
    assert r.status_code == 200, r.text
    rel = r.json()["results"][0]
    assert rel["person_id"] == "p-adhoc" and rel["drivers"]
    values = {d["feature"]: d["value"] for d in rel["drivers"]}
    assert values.get("checkins_missed_90d") == 1.0
    with scored.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM persons WHERE person_id='p-adhoc'")).scalar()
            == 0
        )
    body["person"]["birth_year"] = "nineteen"
    body["events"][1]["type"] = "urine_tset"
    r = api.post("/api/v1/score/history", headers=h, json=body)
    assert r.status_code == 422
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert {"body.person.birth_year", "body.events[1].type"} <= fields


def test_ingest_validates_like_files_and_is_idempotent(api_fresh, fresh):
    h = auth(fresh.tokens, "integ")
    good = {
        "persons": [person(person_id="p-new", worker_id="w-1")],
        "events": [event("n1", "2025-06-01T09:00:00", "home_visit", "p-new")],
    }
    r = api_fresh.post("/api/v1/ingest", headers=h, json=good)
    assert r.status_code == 200, r.text
    assert r.json()["persons"]["stored"] == 1 and r.json()["events"]["stored"] == 1
    again = api_fresh.post("/api/v1/ingest", headers=h, json=good).json()
    assert (again["persons"]["already"], again["events"]["already"]) == (1, 1)
    bad = {
        "events": [
            event("n2", "2025-06-02T09:00:00", "home_vist", "p-new"),
            event("n3", "2025-06-02T09:00:00", "home_visit", "p-ghost"),
            event("n4", "2025-06-03T09:00:00", "counselling", "p-new"),
        ]
    }
    r = api_fresh.post("/api/v1/ingest", headers=h, json=bad)
    assert r.status_code == 422
    rej = {(x["row"], x["column"], x["code"]) for x in r.json()["rejections"]}
    assert rej == {(1, "type", "unknown_event_type"), (2, "person_id", "unknown_person")}
    assert r.json()["events"]["stored"] == 1
    assert api_fresh.post("/api/v1/ingest", headers=h, json={}).status_code == 422
    assert (
        api_fresh.post("/api/v1/ingest", headers=auth(fresh.tokens, "w1"), json=good).status_code
        == 403
    )


def test_actions_show_in_the_timeline(api_fresh, fresh):
    h = auth(fresh.tokens, "w1")
    r = api_fresh.post(
        "/api/v1/persons/p-01/actions",
        headers=h,
        json={
            "kind": "plan_item",
            "plan_item": "home_visit",
            "status": "done",
            "outcome": "relapse",
            "agrees_with_score": False,
            "note": "家访完成",
        },
    )
    assert r.status_code == 201, r.text
    tl = api_fresh.get("/api/v1/persons/p-01/timeline", headers=h).json()["items"]
    mine = [i for i in tl if i["kind"] == "action"]
    assert mine[0]["by"] == "w1" and mine[0]["note"] == "家访完成"
    assert mine[0]["agrees_with_score"] is False
    listed = api_fresh.get("/api/v1/persons/p-01/actions", headers=h).json()
    assert listed[0]["plan_item"] == "home_visit"
    r = api_fresh.post("/api/v1/persons/p-01/actions", headers=h, json={"kind": "plan_item"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "body.plan_item"
    r = api_fresh.post("/api/v1/persons/p-04/actions", headers=h, json={"kind": "other"})
    assert r.status_code == 404


def test_models_groups_kpis_aggregates_runs(api, scored):
    h = auth(scored.tokens, "owner")
    models = api.get("/api/v1/models", headers=h).json()
    assert {m["outcome"] for m in models["models"]} == {"relapse", "loss_of_contact"}
    assert models["bands"]["relapse"] == [0.1, 0.2, 0.4]
    kpis = api.get("/api/v1/kpis", headers=h).json()["towns"]
    west = next(t for t in kpis if t["town"] == "西镇")
    assert (west["ordered"], west["active"], west["lost_contact"]) == (3, 2, 1)
    agg = api.get("/api/v1/aggregates", headers=h).json()
    assert agg["persons"] == 8 and agg["alerts"]["positive_test"] == 1
    assert "person_id" not in str(agg)
    runs = api.get("/api/v1/runs", headers=h).json()
    assert [r["as_of"] for r in runs] == ["2025-06-01", "2025-05-31"]
    groups = api.get("/api/v1/groups?district=示例区", headers=auth(scored.tokens, "admin")).json()
    assert sum(g["count"] for g in groups["groups"]) == 8


def test_export_is_csv(api, scored):
    r = api.get("/api/v1/exports/risk-list.csv?worker_id=w-1", headers=auth(scored.tokens, "w1"))
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("rank,person_id") and len(lines) == 5
    r = api.get("/api/v1/exports/risk-list.csv", headers=auth(scored.tokens, "w1"))
    assert r.status_code == 422


def test_ops_endpoints(api, scored):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["latest_run"] == "2025-06-01"
    api.get("/api/v1/risk-lists/me", headers=auth(scored.tokens, "w1"))
    text = api.get("/metrics").text
    assert 'route="/api/v1/risk-lists/me"' in text
    assert "p-01" not in text


def test_errors_are_json_and_never_500_for_bad_input(api, scored):
    h = auth(scored.tokens, "w1")
    cases = [
        ("get", "/api/v1/risk-lists/me?limit=abc", None, "query.limit"),
        ("get", "/api/v1/risk-lists/me?outcome=flu", None, "query.outcome"),
        ("get", "/api/v1/risk-lists/me?band=purple", None, "query.band.0"),
        ("get", "/api/v1/risk-lists/me?date=2025-13-01", None, "query.date"),
        ("post", "/api/v1/persons/p-01/what-if", {"changes": "x"}, "body.changes"),
        ("post", "/api/v1/persons/p-01/actions", {"kind": "dance"}, "body.kind"),
    ]
    for method, url, body, field in cases:
        r = getattr(api, method)(url, headers=h, **({"json": body} if body is not None else {}))
        assert r.status_code == 422, (url, r.text)
        assert field in {f["field"] for f in r.json()["error"]["fields"]}
    r = api.post(
        "/api/v1/persons/p-01/actions",
        headers={**h, "content-type": "application/json"},
        content=b"{not json",
    )
    assert r.status_code == 422
    assert api.get("/api/v1/nothing-here", headers=h).json()["error"]["code"] == "not_found"


def test_openapi_is_complete(api):
    spec = api.get("/api/v1/openapi.json").json()
    assert spec["components"]["securitySchemes"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ok = op["responses"].get("200") or op["responses"].get("201")
            assert ok, (method, path)
            assert op.get("summary"), (method, path)
    assert "examples" in str(spec["components"]["schemas"]["ActionIn"])
    assert not any(m in ("put", "patch", "delete") for p in spec["paths"].values() for m in p)
