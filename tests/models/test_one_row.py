"""The one-row path gives the champion's own numbers and drivers.

``OneRow.score`` against ``Champion.predict / contributions / explain``
(LightGBM's TreeSHAP) on models with plain, NaN-missing and zero-as-missing
splits, trees of 8 splits, and trees too large for the tables; rows with NaN,
zero, -0.0 and values at the thresholds; and the build-time check that keeps
tables which disagree with LightGBM out.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from features.catalog import load_catalog
from models.champion import Champion
from models.one_row import OneRow, RowTables
from models.predictor import CalibratedBooster

NAMES = [f.name for f in load_catalog().features()]


def _data(n: int, seed: int, nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 4, (n, len(NAMES))).astype(float)
    X *= rng.choice([0.5, 1.0, 3.0, 30.0], (n, len(NAMES)))
    X[rng.random((n, len(NAMES))) < 0.1] *= -1
    logit = -1.5 + 0.6 * X[:, 0] - 0.4 * X[:, 3] + 0.3 * (X[:, 7] > 1) + 0.2 * X[:, 11]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    if nan:
        X[rng.random((n, len(NAMES))) < 0.15] = np.nan
    return X, y


def _booster(rounds: int = 60, nan: bool = False, **params) -> lgb.Booster:
    X, y = _data(3000, 1, nan)
    base = {
        "objective": "binary",
        "num_leaves": 8,
        "max_depth": 3,
        "min_child_samples": 20,
        "learning_rate": 0.1,
        "verbose": -1,
        "num_threads": 1,
        "seed": 3,
    }
    return lgb.train({**base, **params}, lgb.Dataset(X, y), num_boost_round=rounds)


def _rows(nan: bool = True) -> np.ndarray:
    """Every other row with NaN (when ``nan``); zeros, -0.0, tiny and threshold values."""
    X, _ = _data(400, 2)
    if nan:
        X[1::2][np.random.default_rng(3).random(X[1::2].shape) < 0.15] = np.nan
    X[:4] = 0.0
    X[4:8] = -0.0
    X[8:12, ::3] = 1e-40
    X[12:16, ::2] = 0.5  # thresholds between the integers
    return X


def _champion(booster: lgb.Booster) -> Champion:
    return Champion.from_predictor(
        CalibratedBooster(booster, 1.3, -0.2, NAMES), "relapse", "m", "1"
    )


def _assert_equal(one: OneRow, champion: Champion, X: np.ndarray) -> None:
    """Same p and contributions; same drivers for finite rows (NaN has no words)."""
    p, contributions = champion.predict(X), champion.contributions(X)
    for i in range(len(X)):
        c1 = one.contributions(X[i])
        np.testing.assert_allclose(c1, contributions[i], rtol=0, atol=1e-9)
        if np.isnan(X[i]).any():
            continue
        p1, c1, d1 = one.score(X[i], top_k=5)
        assert p1 == pytest.approx(p[i], abs=1e-9)
        (d0,) = champion.explain(X[i : i + 1], top_k=5)
        assert [d.feature for d in d1] == [d.feature for d in d0]
        for mine, theirs in zip(d1, d0, strict=True):
            assert mine.contribution == pytest.approx(theirs.contribution, abs=1e-9)
            assert {**mine.__dict__, "contribution": 0} == {**theirs.__dict__, "contribution": 0}


@pytest.mark.parametrize(
    ("label", "params", "nan", "tabulated"),
    [
        ("plain", {}, False, True),
        ("nan missing", {}, True, True),
        ("zero as missing", {"zero_as_missing": True}, False, True),
        ("8 splits", {"num_leaves": 9, "max_depth": 4}, True, True),
        ("31 leaves: LightGBM's TreeSHAP", {"num_leaves": 31, "max_depth": -1}, True, False),
    ],
)
def test_one_row_equals_the_champion(label, params, nan, tabulated):
    champion = _champion(_booster(nan=nan, **params))
    one = OneRow.of(champion)
    assert (one.tables is not None) == tabulated
    X = _rows(nan=nan)
    _assert_equal(one, champion, X[::3])
    with pytest.raises(ValueError, match="one row"):
        one.score(X[:2])


def test_tables_that_disagree_with_lightgbm_are_not_used(monkeypatch):
    champion = _champion(_booster())
    true_row = RowTables.row
    monkeypatch.setattr(RowTables, "row", lambda self, x: true_row(self, x) + 1e-7)
    one = OneRow.of(champion)
    assert one.tables is None
    monkeypatch.undo()
    _assert_equal(one, champion, _rows(nan=False)[:20])


def test_a_model_without_splits_is_scored_by_lightgbm():
    X, _ = _data(500, 1)
    flat = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_in_leaf": 10_000},
        lgb.Dataset(X, np.r_[np.ones(50), np.zeros(450)]),
        num_boost_round=3,
    )
    champion = _champion(flat)
    one = OneRow.of(champion)
    assert one.tables is None
    np.testing.assert_allclose(
        one.contributions(X[0]), champion.contributions(X[:1])[0], rtol=0, atol=1e-12
    )
