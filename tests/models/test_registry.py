"""Registry, pyfunc round trip via the alias, gates, concurrent promotion, safe reruns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest

from features import build_features
from models import registry
from models.champion import frame_to_matrix, load_champion
from models.retrain import Decision, train_and_decide

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory, inputs, cfg) -> Iterator[tuple[Path, Decision]]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SUNFLOWER_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        client = registry.connect()
        first = train_and_decide(inputs, "relapse", cfg, client)
        yield home, first


def test_first_run_promotes_when_absolute_gates_pass(store):
    home, first = store
    assert first.promoted, first.reasons
    assert first.champion_before is None
    client = registry.connect()
    mv = registry.champion_version(client, "relapse")
    assert mv is not None and str(mv.version) == first.version
    assert mv.tags["decision"] == "promoted"
    assert (home / "mlflow.db").exists() and (home / "mlartifacts").is_dir()
    run = client.get_run(mv.tags["run_id"])
    assert "latest.lightgbm.roc_auc" in run.data.metrics
    assert "latest.ratio.roc_auc" in run.data.metrics
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "data_manifest.json", "evaluation.json", "card"} <= files
    card = {a.path for a in client.list_artifacts(run.info.run_id, "card")}
    assert {"card/model_card.md", "card/model_card.html", "card/shap_summary.png"} <= card


def test_pyfunc_round_trip_via_the_alias(store, inputs, panel):
    as_of = panel.dates[-3]
    entities = panel.frame.loc[panel.frame["as_of"] == as_of, ["person_id", "as_of"]].head(40)
    frame = build_features(entities, persons=inputs.persons, events=inputs.events)
    pyfunc = mlflow.pyfunc.load_model("models:/sunflower-relapse@champion")
    p = np.asarray(pyfunc.predict(frame))
    champion = load_champion("relapse")
    X = frame_to_matrix(frame, champion.feature_names)
    np.testing.assert_allclose(p, champion.predict(X), rtol=1e-12)
    assert ((p > 0) & (p < 1)).all()
    assert champion.version == store[1].version
    assert champion.metrics["roc_auc"] > 0.5
    contrib = champion.contributions(X)
    np.testing.assert_allclose(contrib.sum(1), np.log(p / (1 - p)), atol=1e-9)


def test_rerun_on_the_same_data_and_config_is_a_no_op(store, inputs, cfg):
    client = registry.connect()
    again = train_and_decide(inputs, "relapse", cfg, client)
    assert again.reused and again.version == store[1].version and again.promoted
    names = client.search_model_versions("name = 'sunflower-relapse'")
    assert len(names) == 1


def test_a_deliberately_worse_challenger_is_not_promoted(store, inputs, cfg):
    client = registry.connect()
    stump = {**cfg.lightgbm.params, "max_depth": 1, "num_leaves": 2}
    worse = cfg.updated(lightgbm={"params": stump, "num_boost_round": 1})
    decision = train_and_decide(inputs, "relapse", worse, client)
    assert not decision.promoted
    assert any("worse than champion" in r for r in decision.reasons), decision.reasons
    assert str(registry.champion_version(client, "relapse").version) == store[1].version
    name = registry.model_name("relapse")
    assert client.get_model_version(name, decision.version).tags["decision"] == "rejected"
    champion_tags = client.get_model_version(name, store[1].version).tags
    assert champion_tags[f"challenge.{decision.version}"].startswith("kept against")


def test_concurrent_promotions_cannot_both_win(store):
    """Two runs that both saw no champion race to promote; exactly one wins."""
    client = registry.connect()
    name = registry.model_name("relapse")
    champion = registry.champion_version(client, "relapse")
    rivals = [
        str(client.create_model_version(name, champion.source, champion.run_id).version)
        for _ in range(3)
    ]
    client.delete_registered_model_alias(name, registry.ALIAS)
    barrier = threading.Barrier(len(rivals))
    results: dict[str, bool] = {}

    def attempt(version: str) -> None:
        barrier.wait()
        results[version] = registry.promote(registry.connect(), "relapse", version, None)

    threads = [threading.Thread(target=attempt, args=(v,)) for v in rivals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results.values()) == 1, results
    winner = next(v for v, ok in results.items() if ok)
    assert str(registry.champion_version(client, "relapse").version) == winner
    assert not registry.promote(client, "relapse", rivals[0], None), "stale expectation"
    client.set_registered_model_alias(name, registry.ALIAS, str(champion.version))
