"""Training and temporal evaluation of one outcome (issue 5).

Contract: :func:`train_outcome` takes a :class:`models.panel.Panel` and an
outcome and, for every rolling fold (:func:`models.panel.make_folds`):

1. fits LightGBM on the training dates with early stopping on the validation
   dates, and a Platt calibrator on the validation margins;
2. fits the baselines (logistic regression, the worker's rule) on the same
   rows, calibrated the same way;
3. scores the test dates and computes every metric (:mod:`models.metrics`),
   the oracle's metrics on the same rows when the truth is known, the
   model/oracle ratios, and the fairness table (:mod:`models.fairness`).

It then fits the *production* model the same way on the newest data
(:func:`models.panel.production_fold`). The result holds aggregates only
(metrics, curves, tables); test rows stay in memory for the retraining gates
and are never written to artifacts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.config import Outcome
from models.baselines import LogisticBaseline, RuleBaseline
from models.calibration import PlattCalibrator
from models.config import ModelConfig
from models.fairness import fairness_table
from models.metrics import evaluate, precision_curve, reliability, select_top
from models.panel import Fold, Panel, fold_plan, make_folds, production_fold
from models.predictor import CalibratedBooster

Progress = Callable[[str], None]
CURVE_FRACTIONS = np.round(np.arange(0.01, 0.51, 0.01), 2)
MODELS = ("lightgbm", "logistic", "rule")


def xy(rows: pd.DataFrame, names: list[str], outcome: str) -> tuple[np.ndarray, np.ndarray]:
    """The feature matrix (float64, columns = names) and the 0/1 labels."""
    X = rows[names].to_numpy(dtype=np.float64)
    return X, rows[f"label_{outcome}"].to_numpy(dtype=int)


def fit_lightgbm(
    X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, cfg: ModelConfig
) -> lgb.Booster:
    """LightGBM with early stopping on the validation rows; trimmed to the best iteration."""
    c = cfg.lightgbm
    params = {
        **c.params,
        "num_threads": c.threads,
        "seed": c.seed,
        "deterministic": True,
        "verbose": -1,
    }
    train = lgb.Dataset(X, y, free_raw_data=True)
    valid = lgb.Dataset(Xv, yv, reference=train)
    booster = lgb.train(
        params,
        train,
        num_boost_round=c.num_boost_round,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(c.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def fit_calibrated(
    X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, names: list[str], cfg: ModelConfig
) -> CalibratedBooster:
    """LightGBM + Platt scaling on the validation margin."""
    for rows, name in ((y, "training"), (yv, "validation")):
        if len(rows) == 0 or rows.min() == rows.max():
            kind = "no labelled rows" if len(rows) == 0 else (
                f"{len(rows):,} labelled rows, all {'positive' if rows[0] else 'negative'}"
            )  # fmt: skip
            raise ValueError(
                f"the {name} period holds {kind}: a model needs both outcomes there; "
                "use a longer history, wider folds (models.yaml) or check the label rule "
                "(labels.yaml)"
            )
    booster = fit_lightgbm(X, y, Xv, yv, cfg)
    cal = PlattCalibrator().fit(np.asarray(booster.predict(Xv, raw_score=True)), yv)
    return CalibratedBooster(booster, cal.a_, cal.b_, names)


@dataclass
class FoldResult:
    """One fold's models, metrics and audit tables (aggregates only)."""

    fold: Fold
    metrics: dict[str, dict[str, float]]
    ratios: dict[str, float]
    fairness: pd.DataFrame
    curves: dict[str, Any]
    trees: int
    predictor: CalibratedBooster
    test: pd.DataFrame = field(repr=False)

    def beats_baselines(self) -> bool:
        lgbm = self.metrics["lightgbm"]
        return all(
            lgbm[m] >= self.metrics[b][m]
            for b in ("logistic", "rule")
            for m in ("roc_auc", "precision_at_10pct")
        )


@dataclass
class TrainingResult:
    """Everything one training run produced for one outcome."""

    outcome: Outcome
    config: ModelConfig
    feature_names: list[str]
    folds: list[FoldResult]
    final: CalibratedBooster
    final_fold: Fold
    manifest: dict[str, Any]
    cutoff: pd.Timestamp
    #: set when the configured fold plan did not fit the data and a smaller one was used
    fold_note: str | None = None

    @property
    def latest(self) -> FoldResult:
        return self.folds[0]


def _metrics(rows: pd.DataFrame, prob: np.ndarray, cfg: ModelConfig) -> dict[str, float]:
    m = cfg.metrics
    return evaluate(
        rows["y"].to_numpy(),
        prob,
        rows["as_of"].to_numpy(),
        rows["worker_id"].astype(str).to_numpy(),
        top_fraction=m.top_fraction,
        per_worker=m.per_worker,
        bins=m.ece_bins,
        seed=m.tie_seed,
    )


def score_rows(
    rows: pd.DataFrame, outcome: str, prob: np.ndarray, cfg: ModelConfig
) -> dict[str, Any]:
    """Metrics, oracle comparison and fairness of one model's probabilities on test rows."""
    rows = rows.assign(y=rows[f"label_{outcome}"].to_numpy(dtype=int), prob=prob)
    out: dict[str, Any] = {"metrics": _metrics(rows, prob, cfg)}
    truth = rows[f"p_{outcome}"].to_numpy(dtype=float)
    known = ~np.isnan(truth)
    if known.sum() > 0 and rows.loc[known, "y"].nunique() == 2:
        sub = rows[known]
        oracle = _metrics(sub, truth[known], cfg)
        model = _metrics(sub, prob[known], cfg)
        out["oracle"] = oracle
        out["ratios"] = {
            k: model[k] / oracle[k] if oracle[k] else math.nan
            for k in ("roc_auc", "pr_auc", "precision_at_10pct", "precision_at_2_per_worker")
            if k in oracle
        }
    selected, _ = select_top(
        prob,
        rows["y"].to_numpy(),
        rows["as_of"].to_numpy(),
        lambda n: math.ceil(cfg.metrics.top_fraction * n),
        "random",
        cfg.metrics.tie_seed,
    )
    f = cfg.fairness
    out["fairness"] = fairness_table(
        rows.assign(selected=selected),
        f.attributes,
        f.bounds,
        f.min_group_size,
        f.min_group_positives,
    )
    return out


def fit_fold(
    panel: Panel, fold: Fold, outcome: Outcome, cfg: ModelConfig, test_from: Panel | None = None
) -> FoldResult:
    """Fit and evaluate LightGBM and both baselines on one fold.

    ``test_from`` takes the test rows from another panel (e.g. people the
    model never saw); by default they come from ``panel``.
    """
    names = panel.feature_names
    X, y = xy(panel.rows(outcome, fold.train), names, outcome)
    Xv, yv = xy(panel.rows(outcome, fold.valid), names, outcome)
    test = (test_from or panel).rows(outcome, fold.test)
    Xt, yt = xy(test, names, outcome)
    model = fit_calibrated(X, y, Xv, yv, names, cfg)
    logistic = LogisticBaseline(cfg.logistic.C, cfg.logistic.max_iter).fit(X, y)
    rule = RuleBaseline(cfg.rule[outcome], names).fit()
    probs = {"lightgbm": model.predict(Xt)}
    for name, base in (("logistic", logistic), ("rule", rule)):
        cal = PlattCalibrator().fit(base.score(Xv), yv)
        probs[name] = cal.predict(base.score(Xt))
    scored = {name: score_rows(test, outcome, p, cfg) for name, p in probs.items()}
    metrics = {name: s["metrics"] for name, s in scored.items()}
    main = scored["lightgbm"]
    if "oracle" in main:
        metrics["oracle"] = main["oracle"]
    curves = _curves(test, outcome, probs, cfg)
    return FoldResult(
        fold,
        metrics,
        main.get("ratios", {}),
        main["fairness"],
        curves,
        model.booster.num_trees(),
        model,
        test,
    )


def _curves(
    test: pd.DataFrame, outcome: str, probs: dict[str, np.ndarray], cfg: ModelConfig
) -> dict[str, Any]:
    y = test[f"label_{outcome}"].to_numpy(dtype=int)
    as_of = test["as_of"].to_numpy()
    truth = test[f"p_{outcome}"].to_numpy(dtype=float)
    scores = dict(probs)
    if not np.isnan(truth).any():
        scores["oracle"] = truth
    return {
        "fractions": CURVE_FRACTIONS.tolist(),
        "precision": {
            n: precision_curve(y, s, as_of, CURVE_FRACTIONS, cfg.metrics.tie_seed)
            for n, s in scores.items()
        },
        "reliability": {n: reliability(y, s, cfg.metrics.ece_bins) for n, s in scores.items()},
    }


def fit_production(
    panel: Panel, outcome: Outcome, cfg: ModelConfig
) -> tuple[CalibratedBooster, Fold]:
    """The model that is registered: the same fit on the newest labelled data."""
    fold = production_fold(panel.dates, panel.cutoff, panel.horizon_days, cfg.folds)
    X, y = xy(panel.rows(outcome, fold.train), panel.feature_names, outcome)
    Xv, yv = xy(panel.rows(outcome, fold.valid), panel.feature_names, outcome)
    return fit_calibrated(X, y, Xv, yv, panel.feature_names, cfg), fold


def train_outcome(
    panel: Panel, outcome: Outcome, cfg: ModelConfig, progress: Progress | None = None
) -> TrainingResult:
    """Every fold, then the production model, for one outcome."""
    say = progress or (lambda _msg: None)
    _plan, note = fold_plan(panel.dates, panel.cutoff, panel.horizon_days, cfg.folds)
    if note:
        say(f"{outcome}: {note}")
    folds = make_folds(panel.dates, panel.cutoff, panel.horizon_days, cfg.folds)
    results = []
    for fold in folds:
        say(f"{outcome}: fold {fold.index} (test {fold.describe()['test']})")
        results.append(fit_fold(panel, fold, outcome, cfg))
    say(f"{outcome}: production model")
    final, final_fold = fit_production(panel, outcome, cfg)
    return TrainingResult(
        outcome,
        cfg,
        panel.feature_names,
        results,
        final,
        final_fold,
        panel.manifest,
        panel.cutoff,
        note,
    )
