"""Evaluation metrics for a ranked list at a team's capacity (issue 5).

Contract: pure functions of numpy arrays. :func:`evaluate` returns one flat
dict of floats per (model, fold): ROC AUC, PR AUC (average precision), Brier
score, expected calibration error, and precision/recall at two capacities —
the top ``top_fraction`` of each as_of day's district list, and the top
``per_worker`` of each worker's caseload that day.

Ties at the cut follow triage: rows with equal scores are ordered at random
with a fixed seed (``*`` value), and the worst and best orderings (negatives
first / positives first among ties) are reported too, with the number of rows
that tie with the last selected score (``ties_*``). Metric names use only
characters MLflow accepts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

Ties = Literal["random", "worst", "best"]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (NaN when only one class is present)."""
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else math.nan


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (the step-wise area under the precision-recall curve)."""
    return float(average_precision_score(y, score)) if y.sum() > 0 else math.nan


def brier(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared error of the probabilities."""
    return float(np.mean((prob - y) ** 2))


def reliability(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Equal-width bins on [0, 1]: mean predicted, observed rate and count per non-empty bin."""
    idx = np.minimum((prob * bins).astype(int), bins - 1)
    count = np.bincount(idx, minlength=bins)
    pred = np.bincount(idx, weights=prob, minlength=bins)
    obs = np.bincount(idx, weights=y.astype(float), minlength=bins)
    keep = count > 0
    return {
        "mean_predicted": (pred[keep] / count[keep]).tolist(),
        "observed_rate": (obs[keep] / count[keep]).tolist(),
        "count": count[keep].astype(float).tolist(),
    }


def ece(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: count-weighted |observed - predicted| over the bins."""
    r = reliability(y, prob, bins)
    count = np.asarray(r["count"])
    gap = np.abs(np.asarray(r["observed_rate"]) - np.asarray(r["mean_predicted"]))
    return float((count * gap).sum() / count.sum())


def _order(score: np.ndarray, y: np.ndarray, ties: Ties, rng: np.random.Generator) -> np.ndarray:
    """Row order, highest score first, ties broken as asked."""
    if ties == "random":
        tie = rng.random(len(score))
    elif ties == "worst":
        tie = y.astype(float)  # negatives first among equals
    else:
        tie = -y.astype(float)
    return np.lexsort((tie, -score))


def select_top(
    score: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    k_of: Callable[[int], int],
    ties: Ties = "random",
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Mask of the top ``k_of(n)`` rows of each group, and the rows tied at the cuts.

    A row counts as tied when it has the same score as a group's last selected
    row but the cut could have gone either way (it sits on the other side of it
    or is selected alongside an unselected equal).
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(score), dtype=bool)
    tied = 0
    _, inverse = np.unique(groups, return_inverse=True)
    for g in range(inverse.max() + 1 if len(inverse) else 0):
        rows = np.flatnonzero(inverse == g)
        k = min(k_of(len(rows)), len(rows))
        if k <= 0:
            continue
        order = rows[_order(score[rows], y[rows], ties, rng)]
        mask[order[:k]] = True
        if k < len(rows):
            cut = score[order[k - 1]]
            same = score[rows] == cut
            if (score[order[k:]] == cut).any():
                tied += int(same.sum())
    return mask, tied


def precision_recall(y: np.ndarray, selected: np.ndarray) -> tuple[float, float]:
    """Precision and recall of a selection."""
    hits = float(y[selected].sum())
    n_sel, n_pos = int(selected.sum()), float(y.sum())
    return (hits / n_sel if n_sel else math.nan, hits / n_pos if n_pos else math.nan)


def capacity_metrics(
    y: np.ndarray,
    score: np.ndarray,
    as_of: np.ndarray,
    worker: np.ndarray,
    top_fraction: float,
    per_worker: int,
    seed: int = 0,
) -> dict[str, float]:
    """Precision/recall at the district's top fraction and at each worker's top k, per day."""
    pct = round(top_fraction * 100)
    day_worker = pd.factorize(pd.MultiIndex.from_arrays([as_of, worker]))[0]
    lists: dict[str, tuple[np.ndarray, Callable[[int], int]]] = {
        f"{pct}pct": (as_of, _fraction_of(top_fraction)),
        f"{per_worker}_per_worker": (day_worker, lambda n: per_worker),
    }
    out: dict[str, float] = {}
    for name, (groups, k_of) in lists.items():
        for ties in ("random", "worst", "best"):
            mask, tied = select_top(score, y, groups, k_of, ties, seed)
            p, r = precision_recall(y, mask)
            suffix = "" if ties == "random" else f"_{ties}"
            out[f"precision_at_{name}{suffix}"] = p
            out[f"recall_at_{name}{suffix}"] = r
        out[f"ties_at_{name}"] = float(tied)
    return out


def evaluate(
    y: np.ndarray,
    prob: np.ndarray,
    as_of: np.ndarray,
    worker: np.ndarray,
    *,
    top_fraction: float = 0.10,
    per_worker: int = 2,
    bins: int = 10,
    seed: int = 0,
) -> dict[str, float]:
    """All metrics of one model's probabilities on one test period."""
    y = np.asarray(y, dtype=int)
    prob = np.asarray(prob, dtype=float)
    out = {
        "n": float(len(y)),
        "positives": float(y.sum()),
        "roc_auc": roc_auc(y, prob),
        "pr_auc": pr_auc(y, prob),
        "brier": brier(y, prob),
        "ece": ece(y, prob, bins),
    }
    out.update(capacity_metrics(y, prob, as_of, worker, top_fraction, per_worker, seed))
    return out


def _fraction_of(fraction: float) -> Callable[[int], int]:
    return lambda n: math.ceil(fraction * n)


def precision_curve(
    y: np.ndarray, score: np.ndarray, as_of: np.ndarray, fractions: np.ndarray, seed: int = 0
) -> list[float]:
    """Precision at each top fraction of the daily lists (for the model card)."""
    out = []
    for f in fractions:
        mask, _ = select_top(score, y, as_of, _fraction_of(float(f)), "random", seed)
        out.append(precision_recall(y, mask)[0])
    return out
