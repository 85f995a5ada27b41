"""The calibrated tree model as it runs in production: numpy in, probabilities out.

Contract: :class:`CalibratedBooster` holds a LightGBM booster, the Platt
parameters ``a``, ``b`` and the ordered feature names. ``predict`` gives
calibrated probabilities, ``contributions`` per-feature contributions to the
calibrated log-odds plus the base value in the last column (LightGBM's native
TreeSHAP scaled by ``a``; each row sums to ``a * margin + b``). No pandas and
no training code here: :mod:`models.champion` and :mod:`models.pyfunc` share it.
``batch_contributions`` gives the same contributions for large batches through
:class:`models.treeshap.TreeTables` (vectorised over rows, ~15x faster than
LightGBM's per-row TreeSHAP; checked against LightGBM on the first rows it
sees, and LightGBM's own path whenever the tables decline the model).
:meth:`save` / :meth:`load` use three plain files (``model.txt``,
``calibration.json``, ``features.json``), so the artifact is readable anywhere.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightgbm as lgb
import numpy as np

from models.treeshap import TreeTables

log = logging.getLogger(__name__)
#: Rows of the first batch compared with LightGBM before the tables are trusted.
PROBE_ROWS = 64
MODEL_FILE, CALIBRATION_FILE, FEATURES_FILE = "model.txt", "calibration.json", "features.json"


class CalibratedBooster:
    """A LightGBM booster with Platt calibration on its margin."""

    def __init__(self, booster: lgb.Booster, a: float, b: float, feature_names: list[str]):
        if booster.num_feature() != len(feature_names):
            raise ValueError(
                f"the booster has {booster.num_feature()} features, "
                f"the feature list {len(feature_names)}"
            )
        self.booster = booster
        self.a, self.b = float(a), float(b)
        self.feature_names = list(feature_names)
        self._tables: TreeTables | None | bool = False  # False: not built yet

    def _matrix(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} columns, got {X.shape[1]}")
        return X

    def margin(self, X: np.ndarray) -> np.ndarray:
        """The booster's raw log-odds."""
        return np.asarray(self.booster.predict(self._matrix(X), raw_score=True, num_threads=1))

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """Calibrated log-odds."""
        return self.a * self.margin(X) + self.b

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        return np.asarray(1.0 / (1.0 + np.exp(-self.log_odds(X))))

    def contributions(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """(n, features + 1): contributions to the calibrated log-odds, base value last."""
        raw = np.asarray(
            self.booster.predict(self._matrix(X), pred_contrib=True, num_threads=threads)
        )
        out = raw * self.a
        out[:, -1] += self.b
        return out

    def batch_contributions(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """:meth:`contributions` for many rows at once (vectorised TreeSHAP tables).

        The same numbers as :meth:`contributions` up to floating-point rounding
        (~1e-15); ``threads`` is used only when LightGBM computes them (a model
        the tables decline, or one that failed the first-batch check).
        """
        X = self._matrix(X)
        tables = self._batch_tables(X)
        if tables is None:
            return self.contributions(X, threads=threads)
        out = tables.contributions(X)
        out *= self.a
        out[:, -1] += self.b
        return out

    def _batch_tables(self, X: np.ndarray) -> TreeTables | None:
        if self._tables is False:
            tables = TreeTables.of(self.booster)
            if tables is not None and len(X):
                probe = X[:PROBE_ROWS]
                theirs = self.booster.predict(probe, pred_contrib=True, num_threads=1)
                gap = float(np.max(np.abs(tables.contributions(probe) - theirs)))
                if not gap <= 1e-9:
                    log.warning("TreeSHAP tables differ from LightGBM by %g: not used", gap)
                    tables = None
            if tables is not None and not len(X):
                return tables  # nothing to check against yet; build again next time
            self._tables = tables
        return self._tables if isinstance(self._tables, TreeTables) else None

    @property
    def base_value(self) -> float:
        """The calibrated log-odds of the training set's expected margin."""
        zero = np.zeros((1, len(self.feature_names)))
        return float(self.contributions(zero)[0, -1])

    def save(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "model": folder / MODEL_FILE,
            "calibration": folder / CALIBRATION_FILE,
            "features": folder / FEATURES_FILE,
        }
        self.booster.save_model(str(paths["model"]))
        paths["calibration"].write_text(
            json.dumps({"method": "platt", "a": self.a, "b": self.b}, indent=2)
        )
        paths["features"].write_text(json.dumps(self.feature_names, indent=2))
        return paths

    @classmethod
    def load(cls, folder: Path) -> CalibratedBooster:
        cal = json.loads((folder / CALIBRATION_FILE).read_text())
        names = json.loads((folder / FEATURES_FILE).read_text())
        booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
        return cls(booster, cal["a"], cal["b"], names)
