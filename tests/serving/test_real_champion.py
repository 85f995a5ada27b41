"""End to end with a REAL champion: simulate, ingest, train + register, `sunflower score`, API.

The other serving tests use a stand-in champion; this one trains two tiny
LightGBM champions with the models layer's own train/registry functions into a
temporary MLflow store, scores a small simulated district through the CLI's
``score`` command (the production path: registry alias -> score_date), starts
the app with the registry loader, and reads a worker's list and a stored
explanation through the API.
"""

from __future__ import annotations

import math
import warnings
from datetime import date

import numpy as np
import pytest

pytestmark = pytest.mark.slow

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SCORE_DAY = "2025-01-01"


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_a_real_champion_scores_a_district_and_the_api_shows_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from features.ingest import ingest_dir
    from features.store import make_engine
    from models import registry
    from models.champion import load_champion
    from models.panel import load_dir
    from models.retrain import train_and_decide
    from serving.app import create_app
    from serving.auth import add_user, issue_token
    from serving.settings import get_settings
    from simulator import simulate
    from sunflower.cli import app as cli
    from tests.models.conftest import small_config

    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path / 'service.db'}"
    monkeypatch.setenv("SUNFLOWER_HOME", str(home))
    monkeypatch.setenv("SUNFLOWER_DATABASE_URL", url)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SUNFLOWER_MLFLOW_TRACKING_URI", raising=False)

    data = tmp_path / "district"
    simulate(240, date(2023, 1, 1), date(2024, 12, 31), 5, data, truth=True)
    engine = make_engine(url)
    assert ingest_dir(engine, data).ok

    cfg = small_config().updated(gates={"min_roc_auc": 0.0, "max_ece": 1.0})
    client = registry.connect()
    inputs = load_dir(data)
    for outcome in ("relapse", "loss_of_contact"):
        decision = train_and_decide(inputs, outcome, cfg, client)  # type: ignore[arg-type]
        assert decision.promoted, decision.reasons

    run = CliRunner().invoke(cli, ["score", "--date", SCORE_DAY])
    assert run.exit_code == 0, run.output
    assert "published" in run.output

    champions = {o: load_champion(o) for o in ("relapse", "loss_of_contact")}
    add_user(engine, "admin-x", "admin")
    admin = {"Authorization": f"Bearer {issue_token(engine, 'admin-x')}"}
    settings = get_settings(auth_cache_seconds=0)
    with TestClient(create_app(settings)) as api:
        ready = api.get("/readyz").json()
        assert ready["ready"], ready
        assert {m["version"] for m in ready["models"]} == {"1"}
        district = api.get("/api/v1/risk-lists/districts/" + _district(api, admin), headers=admin)
        assert district.status_code == 200, district.text
        top = district.json()["items"][0]
        add_user(engine, "worker-x", "worker", worker_id=top["worker_id"])
        worker = {"Authorization": f"Bearer {issue_token(engine, 'worker-x')}"}
        mine = api.get("/api/v1/risk-lists/me?limit=200", headers=worker).json()
        assert mine["as_of"] == SCORE_DAY and mine["total"] >= 1
        for outcome in ("relapse", "loss_of_contact"):
            listed = api.get(
                f"/api/v1/risk-lists/me?outcome={outcome}&limit=200", headers=worker
            ).json()["items"]
            for item in listed[:3]:
                pid = item["person_id"]
                r = api.get(f"/api/v1/persons/{pid}/explanation?outcome={outcome}", headers=worker)
                assert r.status_code == 200, r.text
                shown = r.json()
                # the explanation is what the list showed
                assert shown["p"] == item["p"] and shown["band"] == item["band"]
                assert shown["model"] == item["model"]
                assert shown["drivers"][0] == item["top_driver"]
                # and the champion's contributions sum to logit(p)
                champ = champions[outcome]
                x = _stored_vector(engine, pid, champ.feature_names)
                contrib = champ.contributions(x)[0]
                assert math.isclose(float(contrib.sum()), _logit(champ.predict(x)[0]), abs_tol=1e-9)
                assert abs(1 / (1 + math.exp(-contrib.sum())) - shown["p"]) <= 5e-7
                assert math.isclose(shown["base_value"], champ.base_value, abs_tol=1e-9)
                units = champ.explainer.unit_contributions(contrib[None, :])[0]
                assert math.isclose(
                    float(units.sum()) + shown["base_value"], _logit(shown["p"]), abs_tol=1e-4
                )
                top5 = np.sort(np.abs(units))[::-1][: len(shown["drivers"])]
                got = sorted((abs(d["contribution"]) for d in shown["drivers"]), reverse=True)
                np.testing.assert_allclose(got, top5, atol=1e-6)
                assert all(d["sentence_zh"] and d["sentence_en"] for d in shown["drivers"])


def _district(api: TestClient, admin: dict[str, str]) -> str:
    kpis = api.get("/api/v1/kpis", headers=admin).json()["towns"]
    return str(kpis[0]["district"])


def _stored_vector(engine, person_id: str, names: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    import orjson
    import sqlalchemy as sa

    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT r.feature_names, f.vector FROM feature_rows f JOIN score_runs r "
                "ON r.id = f.run_id WHERE f.person_id = :p AND r.status = 'published'"
            ),
            {"p": person_id},
        ).one()
    values = dict(zip(orjson.loads(row[0]), np.frombuffer(row[1]).tolist(), strict=True))
    return np.array([[values[n] for n in names]])
