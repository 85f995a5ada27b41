"""`sunflower score` then monitors; `sunflower monitor --date D` stores the series (issue 16).

A small simulated district, both champions trained with their reference
profiles, two published runs four months apart: the second run's monitor
labels the first (its windows have closed), stores drift, CBPE and realised
figures, logs ``monitor.*`` metrics on the champion version's MLflow run, a
rerun for the same date replaces its rows, and ``/metrics`` shows the latest
verdict and figures as Prometheus gauges.
"""

from __future__ import annotations

import json
import warnings
from datetime import date

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.slow


def test_score_monitors_and_the_series_is_stored(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from features.ingest import ingest_dir
    from features.store import make_engine
    from models import registry
    from models.panel import load_dir
    from models.retrain import train_and_decide
    from serving.db import monitor_metrics, monitor_runs
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
    simulate(400, date(2023, 1, 1), date(2024, 12, 31), 5, data, truth=False)
    engine = make_engine(url)
    assert ingest_dir(engine, data).ok
    cfg = small_config().updated(gates={"min_roc_auc": 0.0, "max_ece": 1.0})
    client = registry.connect()
    inputs = load_dir(data)
    for outcome in ("relapse", "loss_of_contact"):
        assert train_and_decide(inputs, outcome, cfg, client).promoted  # type: ignore[arg-type]

    runner = CliRunner()
    for day in ("2024-06-01", "2024-10-01"):
        run = runner.invoke(cli, ["score", "--date", day])
        assert run.exit_code == 0, run.output
        assert "模型" in run.output, run.output  # the verdict, in Chinese
    with engine.connect() as conn:
        runs = conn.execute(sa.select(monitor_runs)).mappings().all()
        kinds = conn.execute(
            sa.select(monitor_metrics.c.run_as_of, monitor_metrics.c.kind).distinct()
        ).all()
    assert {(str(r["as_of"]), r["outcome"]) for r in runs} == {
        (d, o) for d in ("2024-06-01", "2024-10-01") for o in ("relapse", "loss_of_contact")
    }
    assert all(r["level"] in ("ok", "watch", "retrain") for r in runs)
    assert all(json.loads(r["sentences"])[0].endswith("。") for r in runs)
    got = {(str(d), k) for d, k in kinds}
    # the October pass labelled the June run (closed: June 1 + 90 + 14 days <= October 1)
    assert ("2024-06-01", "realised") in got and ("2024-10-01", "drift") in got
    assert ("2024-10-01", "realised") not in got

    rerun = runner.invoke(cli, ["monitor", "--date", "2024-10-01"])
    assert rerun.exit_code == 0, rerun.output
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(monitor_runs)).scalar()
    assert n == 4  # replaced, not added
    mv = registry.champion_version(client, "relapse")
    assert mv is not None
    history = client.get_metric_history(mv.run_id, "monitor.verdict_level")
    assert len(history) >= 2
    missing = runner.invoke(cli, ["monitor", "--date", "2024-11-01"])
    assert missing.exit_code == 1 and "sunflower score" in missing.output
    assert runner.invoke(cli, ["score", "--date", "2024-11-01"]).exit_code == 0
    with engine.connect() as conn:
        passes = conn.execute(
            sa.select(
                monitor_runs.c.outcome, sa.func.count(sa.distinct(monitor_metrics.c.monitor_id))
            )
            .join(monitor_runs, monitor_runs.c.id == monitor_metrics.c.monitor_id)
            .where(
                monitor_metrics.c.kind == "realised",
                monitor_metrics.c.run_as_of == date(2024, 6, 1),
            )
            .group_by(monitor_runs.c.outcome)
        ).all()
    assert dict(passes) == {"relapse": 1, "loss_of_contact": 1}  # a closed run is stored once

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.settings import get_settings

    with TestClient(create_app(get_settings(auth_cache_seconds=0))) as api:
        text = api.get("/metrics").text
    assert 'sunflower_monitor_verdict{outcome="relapse",version="1"}' in text
    assert 'sunflower_monitor_value{metric="expected_precision_at_10pct",outcome="relapse"}' in text
    assert 'sunflower_monitor_value{metric="realised_precision_at_10pct",outcome="relapse"}' in text
    assert "sunflower_score_run_persons" in text and "person_id" not in text

    from serving.auth import add_user, issue_token
    from tests.web.conftest import sign_in

    add_user(engine, "owner-x", "model_owner")
    token = issue_token(engine, "owner-x")
    with TestClient(create_app(get_settings(auth_cache_seconds=0))) as web:
        sign_in(web, {"owner-x": token}, "owner-x")
        page = web.get("/model-health")
        assert page.status_code == 200
        assert "模型监测" in page.text and "复吸模型" in page.text
        assert page.text.count('class="trend"') == 2  # expected and realised
        assert page.text.count('<table class="plain monitor-towns">') == 2  # towns, per outcome
        english = web.get("/model-health?lang=en")
        assert "Model monitoring" in english.text and "复吸模型" not in english.text


def test_retrain_follows_the_verdict(monkeypatch):
    from types import SimpleNamespace

    import pandas as pd
    from typer.testing import CliRunner

    from sunflower import cli_models, cli_monitor
    from sunflower.cli import app as cli

    def fake(level: str, outcome: str) -> SimpleNamespace:
        return SimpleNamespace(
            outcome=outcome,
            verdict=SimpleNamespace(level=level, words=level),
            as_of=pd.Timestamp("2025-06-01"),
            model_version="3",
            sentences=[],
        )

    calls: list[tuple] = []
    monkeypatch.setattr(cli_monitor, "_engine", lambda: None)
    monkeypatch.setattr(
        cli_monitor,
        "monitor_day",
        lambda *_a, **_k: [fake("retrain", "relapse"), fake("watch", "loss_of_contact")],
    )
    monkeypatch.setattr(cli_models, "_run", lambda *a: calls.append(a))
    got = CliRunner().invoke(cli, ["monitor", "--date", "2025-06-01", "--retrain"])
    assert got.exit_code == 0, got.output
    assert len(calls) == 1 and calls[0][0] == ("relapse",)
    assert str(calls[0][4].date()) == "2025-06-01"
    calls.clear()
    assert CliRunner().invoke(cli, ["monitor", "--date", "2025-06-01"]).exit_code == 0
    assert calls == []


def test_failed_runs_are_recorded_and_counted(tmp_path):
    from features.store import make_engine
    from serving.api.request_metrics import Metrics
    from serving.db import migrate
    from sunflower.cli_serving import _record_failure

    engine = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    migrate(engine)
    metrics = Metrics()
    metrics.refresh_from(engine)
    assert "sunflower_score_failures 0.0" in metrics.render().decode()
    _record_failure(engine, date(2025, 6, 1), RuntimeError("the disk is full"))
    _record_failure(engine, date(2025, 6, 2), ValueError("bad row"))
    metrics.refresh_from(engine)
    text = metrics.render().decode()
    assert "sunflower_score_failures 2.0" in text
    assert "sunflower_score_last_failure_seconds 0.0" not in text
