"""The daily job's batch path writes the bodies the per-row path gives (real LightGBM champion)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import orjson
import pytest

from features.catalog import load_catalog
from models.predictor import CalibratedBooster
from models.scoring import Champion
from serving.bands import bands_of
from serving.explain import BodyWriter, body_of, explain_batch, model_ref, score_rows


@pytest.fixture(scope="module")
def champion_and_rows() -> tuple[Champion, np.ndarray]:
    names = [f.name for f in load_catalog().features()]
    rng = np.random.default_rng(4)
    X = rng.poisson(1.0, (4000, len(names))).astype(float)
    X[rng.random(X.shape) < 0.3] = 0.0
    X[:40] = -0.0  # printed "-0" by some formats: must not share a memo with 0.0
    for i, name in enumerate(names):
        if name.endswith("_imp"):
            X[:, i] = rng.random(len(X)) < 0.2  # missing flags set on some rows
    logit = X[:, :8].sum(axis=1) * 0.4 - 2.5
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "num_leaves": 8, "max_depth": 3, "verbose": -1}
    booster = lgb.train({**params, "num_threads": 1}, lgb.Dataset(X, y), num_boost_round=60)
    predictor = CalibratedBooster(booster, 0.95, -0.1, names)
    return Champion.from_predictor(predictor, "relapse", "sunflower-relapse", "7", "t"), X


def test_batch_bodies_equal_the_per_row_bodies(champion_and_rows):
    champion, X = champion_and_rows
    batch = explain_batch(champion, X)
    assert batch is not None
    p, top = batch
    contributions = champion.predictor.batch_contributions(X)
    drivers = champion.explainer.explain(X, contributions, 5)
    writer = BodyWriter(champion)
    model = model_ref(champion)
    bands = bands_of("relapse", p).tolist()
    units = {u.name: u for u in champion.explainer.units}
    for i in range(len(X)):
        shown = round(float(p[i]), 6)
        ours = writer.body(
            shown,
            bands[i],
            top.units[i].tolist(),
            top.contributions[i].tolist(),
            top.key_unit[i].tolist(),
            top.key_value[i].tolist(),
        )
        theirs = body_of(champion, shown, bands[i], drivers[i], model)
        assert orjson.dumps(ours) == orjson.dumps(theirs)
        for d in ours["drivers"]:  # the words Unit.describe gives for this very row
            zh, en, value = units[d["feature"]].describe(X[i])
            assert d["sentence_zh"].startswith(f"{zh}，") and d["sentence_en"].startswith(en)
            assert repr(d["value"]) == repr(value)


def test_batch_p_and_drivers_agree_with_lightgbm_scoring(champion_and_rows):
    champion, X = champion_and_rows
    batch = explain_batch(champion, X[:500])
    assert batch is not None
    p, top = batch
    p_lgb, _, bodies = score_rows(champion, X[:500])  # LightGBM's own TreeSHAP
    np.testing.assert_allclose(p, p_lgb, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p, champion.predict(X[:500]), rtol=0, atol=1e-12)
    for i, body in enumerate(bodies):
        features = [champion.explainer.units[j].name for j in top.units[i]]
        assert features == [d["feature"] for d in body["drivers"]]
        assert top.contributions[i] == pytest.approx(
            [d["contribution"] for d in body["drivers"]], abs=1e-6
        )


def test_champions_without_the_batch_path_are_declined():
    from tests.serving.fakes import fake_champions

    fake = fake_champions()["relapse"]
    assert explain_batch(fake, np.zeros((3, len(fake.feature_names)))) is None
