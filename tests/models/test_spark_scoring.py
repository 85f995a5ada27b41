"""Champions on Spark (issue 18 item 2, the scoring half): spark_udf and mapInPandas.

A model over the catalog's columns is logged as the self-contained pyfunc; the
district's features for one date are computed by Spark; then

* ``mlflow.pyfunc.spark_udf`` gives, row for row, the probabilities the champion
  gives in process on the embedded engine's features, with ``env_manager="local"``
  and with ``"uv"`` (an environment MLflow builds from the model's requirements.txt
  alone, so the executors' model server has no Sunflower installed);
* ``mapInPandas`` with the champion's explainer on the TreeSHAP tables gives the
  same probabilities, drivers (JSON, sentences included) and plan items as the
  explainer on the embedded features.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest

from features.catalog import load_catalog
from features.engine import build_features
from features.engine.spark import spark_features
from models.champion import Champion
from models.predictor import CalibratedBooster
from models.pyfunc import log_pyfunc
from models.spark_scoring import explain_frame, spark_explanations, spark_probabilities

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

AS_OF = pd.Timestamp("2024-03-01")


@pytest.fixture(scope="module")
def embedded(spark_district: Path) -> pd.DataFrame:
    """The embedded engine's features for everyone active at AS_OF."""
    from features.engine import build_cohort

    persons = pd.read_parquet(spark_district / "persons.parquet")
    events = pd.read_parquet(spark_district / "events.parquet")
    ent = pd.DataFrame({"person_id": persons["person_id"], "as_of": AS_OF})
    cohort = build_cohort(ent, persons=persons, events=events)
    ent = ent[cohort["in_cohort"].to_numpy()].reset_index(drop=True)
    return build_features(ent, persons=persons, events=events)


@pytest.fixture(scope="module")
def champion(embedded: pd.DataFrame) -> Champion:
    names = [f.name for f in load_catalog().features()]
    X = embedded[names].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(5)
    y = (X[:, :5].sum(1) + rng.normal(size=len(X)) > np.median(X[:, :5].sum(1))).astype(int)
    params = {"objective": "binary", "max_depth": 3, "num_leaves": 8, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=names), num_boost_round=25)
    return Champion.from_predictor(CalibratedBooster(booster, 0.8, -0.3, names), "relapse")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, champion: Champion) -> Path:
    tmp = tmp_path_factory.mktemp("spark_model")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        exp = mlflow.create_experiment("spark", artifact_location=(tmp / "art").as_uri())
        with mlflow.start_run(experiment_id=exp):
            info = log_pyfunc(champion.predictor)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=info.model_uri, dst_path=str(tmp / "model"), tracking_uri=uri
        )
    finally:
        mlflow.set_tracking_uri(before)
    return Path(local)


@pytest.fixture(scope="module")
def on_spark(spark: object, spark_district: Path) -> object:
    return spark_features(
        spark,  # type: ignore[arg-type]
        spark_district / "persons.parquet",
        spark_district / "events.parquet",
        [AS_OF],
    ).cache()


def by_person(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("person_id").reset_index(drop=True)


def test_spark_udf_gives_the_champions_probabilities(
    spark: object, on_spark: object, model_dir: Path, champion: Champion, embedded: pd.DataFrame
) -> None:
    scored = spark_probabilities(spark, on_spark, str(model_dir), "relapse")  # type: ignore[arg-type]
    got = by_person(scored.select("person_id", "p_relapse").toPandas())
    want = by_person(embedded)
    assert got["person_id"].tolist() == want["person_id"].tolist()
    expected = champion.predict(want[champion.feature_names].to_numpy(dtype=np.float64))
    np.testing.assert_allclose(got["p_relapse"].to_numpy(), expected, rtol=0, atol=1e-12)


def test_map_in_pandas_gives_the_same_drivers_and_plan_items(
    on_spark: object, champion: Champion, embedded: pd.DataFrame
) -> None:
    got = by_person(spark_explanations(on_spark, champion).toPandas())  # type: ignore[arg-type]
    want_rows = by_person(embedded)
    want = explain_frame(champion, want_rows)
    assert got["person_id"].tolist() == want_rows["person_id"].tolist()
    np.testing.assert_allclose(got["p_relapse"], want["p_relapse"], rtol=0, atol=1e-12)
    assert got["drivers_relapse"].tolist() == want["drivers_relapse"].tolist()
    assert got["plan_items_relapse"].tolist() == want["plan_items_relapse"].tolist()
    assert got["drivers_relapse"].str.contains("sentence_zh").all()


def test_spark_udf_in_an_environment_built_from_the_models_requirements_alone(
    spark: object,
    on_spark: object,
    model_dir: Path,
    champion: Champion,
    embedded: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """env_manager="uv": MLflow builds a venv from requirements.txt (uv, its cache) and the
    executors score through a model server in it, where Sunflower is not installed."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    scored = spark_probabilities(
        spark,  # type: ignore[arg-type]
        on_spark,  # type: ignore[arg-type]
        str(model_dir),
        "relapse",
        env_manager="uv",
    )
    got = by_person(scored.select("person_id", "p_relapse").toPandas())
    want = by_person(embedded)
    expected = champion.predict(want[champion.feature_names].to_numpy(dtype=np.float64))
    np.testing.assert_allclose(got["p_relapse"].to_numpy(), expected, rtol=0, atol=1e-12)
