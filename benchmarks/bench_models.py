"""Models benchmark (issue 5): training time, explanation throughput, tree-shape cost.

Prints:
* training one outcome on a 1,000,000-row panel with ~80 features, early
  stopping on a 200,000-row validation period and Platt calibration (target
  < 90 s on 2 cores);
* explanation throughput with top-5 drivers and zh-CN/en sentences (target
  >= 5,000 rows/s), and shap's TreeExplainer on the same rows for the ratio;
* the AUC and explanation cost of the tree shape (the config's max_depth 3 /
  8 leaves against max_depth 6 and LightGBM's default 31 leaves, no depth cap).

Data are synthetic: counts, days-since and flags in the catalog's columns with a
logistic truth that has interactions and thresholds (so deeper trees *could*
help). ``BENCH_MODELS_ROWS`` shrinks the training panel for a quick run.
"""

from __future__ import annotations

import os
import time

import numpy as np

from models.champion import Champion
from models.config import load_config
from models.panel import model_features
from models.predictor import CalibratedBooster
from models.train import fit_calibrated


def synthetic(n: int, names: list[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.empty((n, len(names)))
    for j, name in enumerate(names):
        if (
            name.endswith(("_imp", "_none", "_unknown"))
            or "_" in name
            and name.split("_")[0] in {"program", "drug", "household", "living", "last"}
        ):
            X[:, j] = rng.random(n) < 0.3
        elif name.startswith("days_"):
            X[:, j] = rng.exponential(60, n).round()
        elif name == "age":
            X[:, j] = rng.normal(38, 9, n).round()
        else:
            X[:, j] = rng.poisson(1.0, n)
    z = -3.2 + 0.5 * X[:, 5] + 0.04 * X[:, 30] - 0.01 * X[:, 25] + 0.6 * (X[:, 40] > 2)
    z += 0.8 * (X[:, 33] > 1) * (X[:, 50] < 30) + 0.3 * X[:, 60] * X[:, 12] - 0.02 * X[:, 0]
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return X, y


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def bench_training(names: list[str]) -> None:
    n = int(os.environ.get("BENCH_MODELS_ROWS", 1_000_000))
    X, y = synthetic(n + 200_000, names[:80])
    cfg = load_config().updated(lightgbm={"threads": 2})
    start = time.perf_counter()
    model = fit_calibrated(X[:n], y[:n], X[n:], y[n:], names[:80], cfg)
    seconds = time.perf_counter() - start
    print(
        f"training: {n:,} rows x 80 features + 200,000 validation rows, early stopping, Platt: "
        f"{seconds:.1f} s, {model.booster.num_trees()} trees (target < 90 s)"
    )


def bench_explain(names: list[str]) -> None:
    cfg = load_config()
    X, y = synthetic(260_000, names, seed=1)
    rows = X[250_000:]
    print(
        "shape (max_depth, leaves) | trees | test AUC | explain rows/s top-5 + sentences | "
        "same with batch TreeSHAP tables (the daily job's path) | "
        "shap TreeExplainer rows/s | ratio (LightGBM path; tables path)"
    )
    for depth, leaves in ((3, 8), (6, 31), (-1, 31)):
        params = {**cfg.lightgbm.params, "max_depth": depth, "num_leaves": leaves}
        c = cfg.updated(lightgbm={"params": params, "threads": 2})
        model: CalibratedBooster = fit_calibrated(
            X[:200_000], y[:200_000], X[200_000:250_000], y[200_000:250_000], names, c
        )
        auc = _auc(y[250_000:], model.predict(rows))
        champion = Champion.from_predictor(model, "relapse")
        start = time.perf_counter()
        drivers = champion.explain(rows, top_k=5)
        ours = len(rows) / (time.perf_counter() - start)
        assert len(drivers) == len(rows) and drivers[0][0].sentence_zh
        model.batch_contributions(rows[:64])  # builds (and checks) the tables once per model
        start = time.perf_counter()
        batched = champion.explainer.explain(rows, model.batch_contributions(rows), 5)
        tables = len(rows) / (time.perf_counter() - start)
        assert [d.sentence_zh for d in batched[0]] == [d.sentence_zh for d in drivers[0]]
        theirs = _shap_rate(model, rows[:2000])
        print(
            f"({depth:>2}, {leaves:>2}) | {model.booster.num_trees():>4} | {auc:.4f} | "
            f"{ours:,.0f} | {tables:,.0f} | {theirs:,.0f} | "
            f"{ours / theirs:.1f}x; {tables / theirs:.1f}x"
        )


def _shap_rate(model: CalibratedBooster, rows: np.ndarray) -> float:
    import shap

    explainer = shap.TreeExplainer(model.booster, model_output="raw")
    start = time.perf_counter()
    explainer.shap_values(rows)
    return len(rows) / (time.perf_counter() - start)


def bench_one_row(names: list[str]) -> None:
    X, y = synthetic(60_000, names, seed=2)
    model = fit_calibrated(X[:50_000], y[:50_000], X[50_000:], y[50_000:], names, load_config())
    row = np.ascontiguousarray(X[:1])
    for _ in range(100):
        model.predict(row)
    start = time.perf_counter()
    for _ in range(2000):
        model.predict(row)
    print(f"single-row predict from numpy: {(time.perf_counter() - start) / 2000 * 1e6:.0f} µs")


def main() -> None:
    names = model_features(load_config())
    bench_one_row(names)
    bench_explain(names)
    bench_training(names)


if __name__ == "__main__":
    main()
