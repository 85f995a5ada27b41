"""Baselines every LightGBM model must beat on every fold (issue 5).

Contract (scikit-learn estimator rules: ``__init__`` stores, ``fit`` returns
self, learned state ends in ``_``):

* :class:`LogisticBaseline` — logistic regression on the same features
  (``log1p`` of non-negative columns, standardised, L2-penalised);
* :class:`RuleBaseline` — a worker's rule of thumb: points per unit of a few
  features, capped, summed (``rule`` in the model config). It learns nothing
  from the labels; ``fit`` only records the columns it reads.

Both expose ``score(X)`` (higher = riskier) on the model's feature matrix;
probabilities come from a Platt calibrator fitted on the same held-out period
as LightGBM's (:mod:`models.calibration`), so Brier and ECE compare fairly.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from models.config import RulePoint


class LogisticBaseline:
    """L2 logistic regression on log1p-compressed, standardised features."""

    def __init__(self, C: float = 0.1, max_iter: int = 2000) -> None:
        self.C = C
        self.max_iter = max_iter

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        out = X.copy()
        out[:, self.log_cols_] = np.log1p(np.maximum(X[:, self.log_cols_], 0))
        return out

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticBaseline:
        X = np.asarray(X, dtype=float)
        self.log_cols_ = np.flatnonzero((X.min(axis=0) >= 0) & (X.max(axis=0) > 1))
        Z = self._prepare(X)
        self.scaler_ = StandardScaler().fit(Z)
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.model_.fit(self.scaler_.transform(Z), np.asarray(y, dtype=int))
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        """Log-odds (the margin Platt scaling recalibrates)."""
        Z = self.scaler_.transform(self._prepare(X))
        return np.asarray(self.model_.decision_function(Z))


class RuleBaseline:
    """Sum of capped points per feature, as a worker would count them."""

    def __init__(self, points: dict[str, RulePoint], feature_names: list[str]) -> None:
        self.points = points
        self.feature_names = feature_names

    def fit(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> RuleBaseline:
        missing = [f for f in self.points if f not in self.feature_names]
        if missing:
            raise ValueError(f"rule baseline: features {missing} are not model features")
        self.columns_ = [self.feature_names.index(f) for f in self.points]
        self.weights_ = np.array([p.points for p in self.points.values()])
        self.caps_ = np.array([np.inf if p.cap is None else p.cap for p in self.points.values()])
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        values = np.minimum(np.asarray(X, dtype=float)[:, self.columns_], self.caps_)
        return np.asarray(values @ self.weights_)
