"""Probability calibration: Platt scaling on a model's margin (log-odds).

Contract: :class:`PlattCalibrator` fits ``p = sigmoid(a * margin + b)`` on a
held-out *later* period (the fold's validation dates), scikit-learn style
(``fit`` returns self, learned state ``a_``, ``b_``).

Why Platt and not isotonic: the calibrated log-odds are an affine map of the
LightGBM margin, so TreeSHAP contributions scale by ``a`` exactly and still sum
(with the base value ``a * expected_margin + b``) to the calibrated log-odds —
the explanation a worker reads is the explanation of the probability shown.
Platt's two parameters also cannot overfit a small validation period, where
isotonic regression's step function would (a district has a few hundred
positives per quarter). A monotone map keeps the ranking, so AUC and
precision@k are unchanged by calibration.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.asarray(np.log(p / (1 - p)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


class PlattCalibrator:
    """``p = sigmoid(a * margin + b)``, fitted by (almost unpenalised) logistic regression."""

    def __init__(self, C: float = 1e6) -> None:
        self.C = C

    def fit(self, margin: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        y = np.asarray(y, dtype=int)
        if y.min() == y.max():
            raise ValueError("calibration needs both outcomes in the held-out period")
        lr = LogisticRegression(C=self.C, max_iter=1000)
        lr.fit(np.asarray(margin, dtype=float).reshape(-1, 1), y)
        self.a_ = float(lr.coef_[0, 0])
        self.b_ = float(lr.intercept_[0])
        return self

    def transform(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated log-odds."""
        return self.a_ * np.asarray(margin, dtype=float) + self.b_

    def predict(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        return sigmoid(self.transform(margin))
