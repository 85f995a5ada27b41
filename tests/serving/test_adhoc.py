"""Ad-hoc scoring with REAL LightGBM champions: both forms, same numbers as the daily job.

The other serving tests use a logistic stand-in; here two small LightGBM
champions (the models layer's tree shape, catalog features) go through the
one-row path (:mod:`models.one_row`), and the answers are held to what
:func:`serving.explanations.score_rows` — the daily job's code — gives for the
same row, with and without the front door, on both databases.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from datetime import date

import lightgbm as lgb
import numpy as np
import orjson
import pytest

from features.catalog import load_catalog
from models.champion import Champion
from models.predictor import CalibratedBooster
from serving.api.adhoc import features_from_history
from serving.api.front_door import FrontDoor
from serving.explanations import score_rows
from tests.factories import event, person
from tests.serving.conftest import Scored, auth

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NAMES = [f.name for f in load_catalog().features()]
AS_OF = "2025-06-01"


def _champion(outcome: str, seed: int) -> Champion:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 4, (3000, len(NAMES))).astype(float)
    logit = -2.0 + 0.7 * X[:, NAMES.index("checkins_missed_90d")]
    logit -= 0.6 * X[:, NAMES.index("employed_now")]
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "num_leaves": 8, "max_depth": 3, "verbose": -1}
    booster = lgb.train({**params, "num_threads": 1, "seed": seed}, lgb.Dataset(X, y), 80)
    predictor = CalibratedBooster(booster, 1.1, -0.1, NAMES)
    return Champion.from_predictor(predictor, outcome, f"sunflower-{outcome}", str(seed))


@pytest.fixture(scope="module")
def champions() -> dict[str, Champion]:
    return {"relapse": _champion("relapse", 1), "loss_of_contact": _champion("loss_of_contact", 2)}


def _client(s: Scored, champions: dict[str, Champion], lane: bool = True) -> TestClient:
    from serving.app import create_app

    app = create_app(s.settings(), loader=lambda o: champions[o])
    if not lane:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not FrontDoor]
    return TestClient(app)


@pytest.fixture(scope="module")
def both(scored: Scored, champions) -> Iterator[tuple[TestClient, TestClient]]:
    with _client(scored, champions) as fast, _client(scored, champions, lane=False) as slow:
        yield fast, slow


def _history() -> dict:
    pid = "p-adhoc"
    return {
        "person": person(person_id=pid, prior_compulsory_detox=2),
        "events": [
            event("x1", "2025-04-02T09:00:00", "check_in", pid, "missed"),
            event("x2", "2025-05-03T09:00:00", "check_in", pid, "missed"),
            event("x3", "2025-05-04T09:00:00", "urine_test", pid, "positive"),
            event("x4", "2025-05-20T09:00:00", "home_visit", pid),
        ],
        "as_of": AS_OF,
    }


def _row() -> dict[str, float]:
    h = _history()
    frame = features_from_history(h["person"], h["events"], date.fromisoformat(AS_OF))
    return {n: float(frame[n].iloc[0]) for n in NAMES}


def _same_body(ours: dict, theirs: dict) -> None:
    """Equal, numbers to the rounding of the JSON (6 decimals)."""
    assert ours["p"] == pytest.approx(theirs["p"], abs=1.5e-6)
    assert ours["band"] == theirs["band"]
    assert ours["base_value"] == pytest.approx(theirs["base_value"], abs=1e-9)
    assert ours["plan_items"] == theirs["plan_items"] and ours["model"] == theirs["model"]
    assert len(ours["drivers"]) == len(theirs["drivers"]) == 5
    for a, b in zip(ours["drivers"], theirs["drivers"], strict=True):
        assert a["contribution"] == pytest.approx(b["contribution"], abs=1.5e-6)
        assert {**a, "contribution": 0} == {**b, "contribution": 0}


def test_a_feature_row_is_scored_like_the_daily_job(both, scored, champions):
    fast, _ = both
    row = _row()
    r = fast.post(
        "/api/v1/score/features", headers=auth(scored.tokens, "integ"), json={"features": row}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stored"] is False and body["person_id"] is None
    X = np.array([[row[n] for n in NAMES]])
    for result, outcome in zip(body["results"], ("relapse", "loss_of_contact"), strict=True):
        assert result["outcome"] == outcome and result["run_id"] is None
        _same_body(result, score_rows(champions[outcome], X)[2][0])
        logit = result["base_value"] + sum(d["contribution"] for d in result["drivers"])
        assert 0 < result["p"] < 1 and math.isfinite(logit)


def test_fast_lane_and_fastapi_give_the_same_answers(both, scored):
    fast, slow = both
    h = auth(scored.tokens, "integ")
    row = _row()
    for body in (
        {"features": row},
        {"features": row, "outcomes": ["loss_of_contact"]},
        {"features": {**row, "checkins_missed_90d": 7}, "outcomes": ["relapse", "relapse"]},
        {"features": {k: v for k, v in row.items() if k != "employed_now"}},
        {"features": {**row, "shoe_size": 42}},
    ):
        a = fast.post("/api/v1/score/features", headers=h, json=body)
        b = slow.post("/api/v1/score/features", headers=h, json=body)
        assert (a.status_code, a.json()) == (b.status_code, b.json())


def test_bad_rows_are_422s_naming_the_field(both, scored):
    fast, _ = both
    h = {**auth(scored.tokens, "integ"), "Content-Type": "application/json"}
    row = _row()

    def fields(body: bytes) -> dict[str, str]:
        r = fast.post("/api/v1/score/features", headers=h, content=body)
        assert r.status_code == 422, r.text
        return {f["field"]: f["message"] for f in r.json()["error"]["fields"]}

    missing = {k: v for k, v in row.items() if k not in ("employed_now", "age")}
    assert set(fields(orjson.dumps({"features": missing}))) == {
        "body.features.employed_now",
        "body.features.age",
    }
    assert "not a feature" in fields(orjson.dumps({"features": {**row, "x": 1}}))["body.features.x"]
    too_big = orjson.dumps({"features": {**row, "age": 123456.5}}).replace(b"123456.5", b"1e400")
    assert fields(too_big) == {"body.features.age": "must be a finite number"}
    typo = fields(orjson.dumps({"features": {**row, "employed_now": "yes"}}))
    assert "body.features.employed_now" in typo


def test_the_history_form_scores_the_features_it_builds(both, scored):
    fast, _ = both
    h = auth(scored.tokens, "integ")
    r = fast.post("/api/v1/score/history", headers=h, json=_history())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["person_id"] == "p-adhoc" and body["as_of"] == AS_OF
    row = fast.post("/api/v1/score/features", headers=h, json={"features": _row()}).json()
    for a, b in zip(body["results"], row["results"], strict=True):
        assert (a["person_id"], a["as_of"]) == ("p-adhoc", AS_OF)
        _same_body(a, b)
    values = {d["feature"]: d["value"] for d in body["results"][0]["drivers"]}
    assert values.get("checkins_missed_90d") == 2.0


def test_both_forms_are_audited(fresh, champions):
    with _client(fresh, champions) as client:
        h = auth(fresh.tokens, "integ")
        assert client.post(
            "/api/v1/score/features", headers=h, json={"features": _row()}
        ).is_success
        assert client.post("/api/v1/score/history", headers=h, json=_history()).is_success
        admin = auth(fresh.tokens, "admin")
        entries = {
            action: client.get(f"/api/v1/admin/audit?action={action}", headers=admin).json()
            for action in ("score_features", "score_history")
        }
    (features,) = entries["score_features"]["items"]
    (history,) = entries["score_history"]["items"]
    assert (features["username"], features["role"], features["person_id"]) == (
        "integ",
        "integrator",
        None,
    )
    assert (history["username"], history["person_id"]) == ("integ", "p-adhoc")


def test_openapi_describes_both_forms(both):
    fast, _ = both
    paths = fast.get("/api/v1/openapi.json").json()["paths"]
    for path, schema in (("features", "FeatureRowIn"), ("history", "PersonHistoryIn")):
        post = paths[f"/api/v1/score/{path}"]["post"]
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith(schema)
        assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "AdhocOut"
        )
        assert {"401", "403", "422"} <= set(post["responses"])
