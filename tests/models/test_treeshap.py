"""The TreeSHAP tables give LightGBM's own contributions, or decline the model."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models.predictor import CalibratedBooster
from models.treeshap import TreeTables


def _train(X: np.ndarray, y: np.ndarray, rounds: int = 40, **params: object) -> lgb.Booster:
    base = {
        "objective": "binary",
        "num_leaves": 8,
        "max_depth": 3,
        "min_data_in_leaf": 5,
        "learning_rate": 0.2,
        "verbose": -1,
        "num_threads": 1,
        "seed": 1,
    }
    return lgb.train({**base, **params}, lgb.Dataset(X, y), num_boost_round=rounds)


def _data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.poisson(2, n).astype(float),  # counts: thresholds like 1.5, repeated on paths
            rng.integers(0, 2, n).astype(float),  # a flag
            rng.normal(size=n),
            rng.normal(size=n),
            rng.integers(0, 400, n).astype(float),  # days
            np.zeros(n),  # never split on
        ]
    )
    logit = 0.6 * X[:, 0] - 1.2 * X[:, 1] + X[:, 2] * X[:, 3] + 0.004 * X[:, 4] - 2
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _probe(X: np.ndarray, seed: int = 5) -> np.ndarray:
    """Rows that hit the edges: NaN, tiny values, exact thresholds, zeros."""
    rng = np.random.default_rng(seed)
    P = X[rng.integers(0, len(X), 600)].copy()
    P[rng.random(P.shape) < 0.1] = np.nan
    P[rng.random(P.shape) < 0.05] = 1e-40
    P[rng.random(P.shape) < 0.05] = 0.0
    P[rng.random(P.shape) < 0.05] = -1e-36
    P[rng.random(P.shape) < 0.05] = 1.00000001e-35  # zero for LightGBM (its 1e-35 is a float)
    P[rng.random(P.shape) < 0.05] = -1.0000001e-35  # just beyond it
    P[:50, 0] = 1.5
    P[50:100, 0] = 1.5000000000000002
    return P


def _assert_same(booster: lgb.Booster, X: np.ndarray) -> TreeTables:
    tables = TreeTables.of(booster)
    assert tables is not None
    ours = tables.contributions(X, block_rows=128)
    theirs = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    return tables


def test_tables_equal_lightgbm_contributions_without_missing_values():
    X, y = _data()
    booster = _train(X, y)
    tables = _assert_same(booster, np.vstack([X[:700], _probe(X)]))
    assert tables.n_trees == booster.num_trees()


def test_missing_values_follow_the_default_way():
    X, y = _data(seed=1)
    X[np.random.default_rng(2).random(X.shape) < 0.15] = np.nan  # splits learn missing type NaN
    booster = _train(X, y)
    types = _missing_types(booster)
    assert "NaN" in types
    _assert_same(booster, np.vstack([X[:500], _probe(X)]))


def test_zero_as_missing():
    X, y = _data(seed=3)
    booster = _train(X, y, zero_as_missing=True)
    assert "Zero" in _missing_types(booster)
    _assert_same(booster, np.vstack([X[:500], _probe(X)]))


def test_shallow_and_single_leaf_trees():
    X, y = _data(seed=4)
    _assert_same(_train(X, y, rounds=6, num_leaves=3, max_depth=2), np.vstack([X[:300], _probe(X)]))
    stump = _train(X, y, rounds=3, min_gain_to_split=1e12)  # no split pays: one leaf
    assert [t["num_leaves"] for t in stump.dump_model()["tree_info"]] == [1]
    _assert_same(stump, _probe(X))


def test_models_the_tables_do_not_cover_are_declined():
    X, y = _data(seed=6)
    assert TreeTables.of(_train(X, y, rounds=5, num_leaves=31, max_depth=-1)) is None
    Xc = X.copy()
    Xc[:, 1] = np.random.default_rng(0).integers(0, 6, len(X))
    cat = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1},
        lgb.Dataset(Xc, y, categorical_feature=[1]),
        num_boost_round=5,
    )
    assert "==" in {n.get("decision_type") for n in _nodes(cat)}
    assert TreeTables.of(cat) is None


def test_calibrated_booster_batch_contributions_match_the_lightgbm_path():
    X, y = _data(seed=7)
    predictor = CalibratedBooster(_train(X, y), 0.9, -0.2, [f"f{i}" for i in range(X.shape[1])])
    P = np.vstack([X[:400], _probe(X)])
    np.testing.assert_allclose(
        predictor.batch_contributions(P), predictor.contributions(P), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        predictor.batch_contributions(P).sum(axis=1), predictor.log_odds(P), atol=1e-12
    )


def test_wrong_width_is_refused():
    X, y = _data(seed=8)
    tables = TreeTables.of(_train(X, y, rounds=3))
    assert tables is not None
    with pytest.raises(ValueError, match="columns"):
        tables.contributions(X[:, :3])


def _nodes(booster: lgb.Booster) -> list[dict]:
    out = []
    for tree in booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                out.append(node)
                stack += [node["left_child"], node["right_child"]]
    return out


def _missing_types(booster: lgb.Booster) -> set[str]:
    return {n["missing_type"] for n in _nodes(booster)}
