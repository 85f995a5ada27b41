"""The daily job's batch path writes the bodies the per-row path gives (real LightGBM champion)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import orjson
import pytest

from features.catalog import load_catalog
from models.champion import Champion
from models.explain import Top
from models.predictor import CalibratedBooster
from serving.bands import bands_of
from serving.explanations import (
    BodyWriter,
    body_of,
    json_number,
    json_numbers,
    model_ref,
    round_like_python,
    score_rows,
    signed_two_decimals,
    top_spec,
)


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
    batch = champion.explain_batch(X)
    p, top = batch.p, batch.top
    contributions = champion.predictor.batch_contributions(X)
    drivers = champion.explainer.explain(X, contributions, 5)
    writer = BodyWriter(champion, batch.explainer)
    model = model_ref(champion)
    bands = bands_of("relapse", p).tolist()
    units = {u.name: u for u in champion.explainer.units}
    shown = [round(float(v), 6) for v in p]
    rendered = []
    for lo in range(0, len(X), 700):  # in chunks, as the job does
        part = Top(
            *(a[lo : lo + 700] for a in (top.units, top.contributions, top.key_unit, top.key_value))
        )
        rendered += writer.render(shown[lo : lo + 700], bands[lo : lo + 700], part)
    for i, (body, first, spec) in enumerate(rendered):
        theirs = body_of(champion, shown[i], bands[i], drivers[i], model)
        assert "{" + body == orjson.dumps(theirs).decode()  # byte for byte
        assert first == orjson.dumps(theirs["drivers"][0]).decode()
        assert spec == top_spec(theirs)
        for d in orjson.loads("{" + body)["drivers"]:  # the words Unit.describe gives this row
            zh, en, value = units[d["feature"]].describe(X[i])
            assert d["sentence_zh"].startswith(f"{zh}，") and d["sentence_en"].startswith(en)
            assert repr(d["value"]) == repr(value)


def test_rounding_and_two_decimals_are_pythons():
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            rng.normal(0, 1, 20000),
            rng.normal(0, 1e-6, 2000),
            np.array([0.0, -0.0, 5e-7, -5e-7, 2.5e-7, 0.0000015, 0.125, 0.005, -0.005, 0.015]),
            np.array([1.0000005, 2.675, -2.675, 1e300, -1e-300, np.nan, np.inf, -np.inf]),
            np.round(rng.normal(0, 1, 5000), 7) + 5e-7,  # right next to halves
        ]
    )
    got = round_like_python(x, 6)
    want = [round(float(v), 6) for v in x]
    assert [repr(v) for v in got.tolist()] == [repr(v) for v in want]
    assert signed_two_decimals(x) == [f"{float(v):+.2f}" for v in x]
    assert json_numbers(got) == [orjson.dumps(v).decode() for v in want]


def test_numbers_are_written_as_orjson_writes_them():
    rng = np.random.default_rng(0)
    values = [0.0, -0.0, 1e-4, 9.99e-5, 1e-6, -5e-6, 1e15, 1e16, 609.0, float("nan")]
    values += (rng.choice([-1, 1], 20000) * 10 ** rng.uniform(-9, 18, 20000)).tolist()
    for x in values + [round(v, 6) for v in values]:
        assert json_number(x) == orjson.dumps(x).decode()


def test_batch_p_and_drivers_agree_with_lightgbm_scoring(champion_and_rows):
    champion, X = champion_and_rows
    batch = champion.explain_batch(X[:500])
    p, top = batch.p, batch.top
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
    assert fake.explain_batch(np.zeros((3, len(fake.feature_names)))) is None
    assert fake.one_row() is None


def test_rows_without_drivers_and_the_pieces_are_the_dict_builders(champion_and_rows):
    """A row with no drivers (top_k 0) is the body of no drivers; the writer's pieces
    are the JSON of body_dict / driver_fields, so a field added there appears in both."""
    champion, X = champion_and_rows
    batch = champion.explain_batch(X[:3], top_k=0)
    writer = BodyWriter(champion, batch.explainer)
    bands = bands_of("relapse", batch.p).tolist()
    shown = [round(float(v), 6) for v in batch.p]
    for i, (body, first, spec) in enumerate(writer.render(shown, bands, batch.top)):
        theirs = body_of(champion, shown[i], bands[i], [], model_ref(champion))
        assert "{" + body == orjson.dumps(theirs).decode()
        assert (first, spec) == ("null", None)
