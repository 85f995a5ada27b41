"""/readyz says 'degraded' when the daily job has not run (issue 16: a run 11 months
old was reported ready), and stays 200 so stale lists are still served."""

from __future__ import annotations

from serving.app import create_app
from tests.serving.conftest import Scored
from tests.serving.fakes import fake_champions


def _ready(scored: Scored, **settings: object) -> dict:
    from fastapi.testclient import TestClient

    champs = fake_champions()
    app = create_app(scored.settings().model_copy(update=settings), loader=lambda o: champs[o])
    with TestClient(app) as client:
        r = client.get("/readyz")
    assert r.status_code == 200
    return r.json()


def test_a_stale_run_is_degraded_and_a_fresh_one_ready(scored: Scored) -> None:
    stale = _ready(scored)  # the district's run is 2025-06-01
    assert stale["ready"] is True and stale["status"] == "degraded"
    assert stale["latest_run_age_days"] > 2
    assert "days old" in stale["reasons"][0]
    fresh = _ready(scored, max_run_age_days=100_000)
    assert fresh["status"] == "ready" and fresh["reasons"] == []
