"""The interface serving uses: load a champion, score, explain (no training code).

Contract::

    champion = load_champion("relapse")            # via models:/sunflower-relapse@champion
    X = frame_to_matrix(features_frame, champion.feature_names)
    p = champion.predict(X)                         # calibrated probabilities
    drivers = champion.explain(X, top_k=5)          # per row: list[Driver], words in zh-CN/en
    items = champion.plan_items(drivers[0])         # plan item ids; texts in champion.plan_texts

``predict`` and ``contributions`` take numpy (columns = ``feature_names``) and
never touch pandas, so a single row costs tens of microseconds.
``contributions`` are in calibrated log-odds with the base value last; each
row sums to ``logit(predict(X))`` exactly (Platt scaling, see
:mod:`models.calibration`). The alias is resolved once to a version, and that
version's files are loaded into memory, so a promotion while loading cannot
mix two versions.

Serving relies on :class:`ChampionLike` only. Besides ``predict``/``explain`` it
offers the paths that share one TreeSHAP pass: :meth:`Champion.predict_explain`
(p and drivers of a matrix; p = sigmoid(row sum of the contributions), the
calibrated log-odds exactly), :meth:`Champion.explain_batch` (the daily job: p and
the top drivers as arrays, :class:`BatchExplanation`, chunk by chunk through the
vectorised tables of :mod:`models.treeshap`) and :meth:`Champion.one_row` (the
one-row scorer of :mod:`models.one_row`, built once per loaded champion). A
champion without them (a test double subclassing :class:`ChampionLike`) gets
predict + explain, no batch path and no one-row scorer.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from models.explain import Driver, Explainer, Top
from models.one_row import OneRow
from models.predictor import CalibratedBooster

__all__ = [
    "BatchExplanation",
    "Champion",
    "ChampionLike",
    "Driver",
    "frame_to_matrix",
    "load_champion",
]

#: Rows from which contributions use several threads (a single row is fastest on one).
THREADED_ROWS = 2048
#: Rows per TreeSHAP pass of :meth:`Champion.explain_batch` (bounds the (rows, features) matrix).
BATCH_ROWS = 50_000
_ONE_ROW_LOCK = threading.Lock()


def default_threads(rows: int) -> int:
    """Threads for the contributions of ``rows`` rows: 1 below :data:`THREADED_ROWS`, else <= 4."""
    return min(os.cpu_count() or 1, 4) if rows >= THREADED_ROWS else 1


def probability(logit: np.ndarray) -> np.ndarray:
    """The sigmoid: calibrated probabilities from calibrated log-odds (contribution row sums)."""
    return np.asarray(1.0 / (1.0 + np.exp(-logit)))


@dataclass(frozen=True)
class BatchExplanation:
    """p and the top drivers of many rows as arrays, and the explainer that words them.

    ``top`` holds per row the ``top_k`` units, their contributions and description
    keys (:class:`models.explain.Top`); ``explainer.describe_key`` and
    ``explainer.units`` turn them into the same drivers ``explain`` gives.
    """

    p: np.ndarray
    top: Top
    explainer: Explainer


class ChampionLike(Protocol):
    """The part of a champion serving relies on (a :class:`Champion` is one).

    The three paths with bodies here are the defaults for a champion without
    TreeSHAP tables (a test double subclasses this protocol to get them).
    """

    outcome: str
    model_name: str
    version: str
    trained_at: str
    feature_names: list[str]
    base_value: float
    metrics: dict[str, Any]

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def explain(self, X: np.ndarray, top_k: int = 5) -> list[list[Any]]: ...

    def plan_items(self, drivers: list[Any]) -> list[str]: ...

    def predict_explain(
        self, X: np.ndarray, top_k: int = 5, threads: int | None = None
    ) -> tuple[np.ndarray, list[list[Any]]]:
        """(p, drivers per row); by default ``predict`` then ``explain``."""
        return np.asarray(self.predict(X), dtype=float), self.explain(X, top_k=top_k)

    def explain_batch(
        self, X: np.ndarray, top_k: int = 5, threads: int | None = None
    ) -> BatchExplanation | None:
        """p and the top drivers as arrays, or None without a batch path (the default)."""
        return None

    def one_row(self) -> OneRow | None:
        """The one-row scorer, or None without one (the default)."""
        return None

    def horizon_days(self) -> int | None:
        """The label window (days) the champion was trained for; None when not recorded."""
        return None


def frame_to_matrix(features_frame: pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """The model's columns of a ``build_features`` frame, by name, as a float64 matrix."""
    missing = [n for n in feature_names if n not in features_frame.columns]
    if missing:
        raise ValueError(f"features frame lacks model columns, e.g. {missing[:3]}")
    return np.ascontiguousarray(features_frame[feature_names].to_numpy(dtype=np.float64))


@dataclass
class Champion:
    """A registered model version, loaded into memory, with its explainer."""

    outcome: str
    model_name: str
    version: str
    trained_at: str
    feature_names: list[str]
    base_value: float
    metrics: dict[str, float]
    predictor: CalibratedBooster = field(repr=False)
    explainer: Explainer = field(repr=False)
    tags: dict[str, str] = field(default_factory=dict, repr=False)
    _one_row: OneRow | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_predictor(
        cls,
        predictor: CalibratedBooster,
        outcome: str,
        model_name: str = "",
        version: str = "",
        trained_at: str = "",
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> Champion:
        return cls(
            outcome,
            model_name,
            version,
            trained_at,
            predictor.feature_names,
            predictor.base_value,
            metrics or {},
            predictor,
            Explainer(predictor.feature_names),
            tags or {},
        )

    @property
    def plan_texts(self) -> dict[str, tuple[str, str]]:
        """Plan item id -> (zh-CN, en) text, from the feature catalog."""
        return self.explainer.plan_texts

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, one per row."""
        return self.predictor.predict(X)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, features + 1) contributions to the calibrated log-odds; base value last."""
        return self.predictor.contributions(X)

    def explain(self, X: np.ndarray, top_k: int = 5) -> list[list[Driver]]:
        """Per row, the top-k drivers by |contribution| with sentences and plan items."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(self.feature_names))
        return self.explainer.explain(X, self.contributions(X), top_k)

    def horizon_days(self) -> int | None:
        """The label window (days) recorded with the registered version (``horizon_days`` tag)."""
        value = self.tags.get("horizon_days", "")
        return int(value) if value.isdigit() else None

    def plan_items(self, drivers: list[Driver]) -> list[str]:
        """Plan item ids of the actionable drivers that raise the risk (一人一策)."""
        return self.explainer.plan_items(drivers)

    def _matrix(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(X, dtype=np.float64).reshape(-1, len(self.feature_names))

    def predict_explain(
        self, X: np.ndarray, top_k: int = 5, threads: int | None = None
    ) -> tuple[np.ndarray, list[list[Driver]]]:
        """(p, drivers per row) from one TreeSHAP pass: p = sigmoid(row sum of the
        contributions), the calibrated probability exactly (see the module doc).
        ``threads`` defaults to :func:`default_threads`."""
        X = self._matrix(X)
        contributions = self.predictor.contributions(
            X, threads=default_threads(len(X)) if threads is None else threads
        )
        return probability(contributions.sum(axis=1)), self.explainer.explain(
            X, contributions, top_k
        )

    def explain_batch(
        self, X: np.ndarray, top_k: int = 5, threads: int | None = None
    ) -> BatchExplanation:
        """p and the top drivers of every row of ``X`` as arrays (the daily job).

        The contributions come from the TreeSHAP tables (numpy, one thread), in
        passes of :data:`BATCH_ROWS` rows; ``threads`` (default
        :func:`default_threads`) applies only when LightGBM computes them for a
        model the tables decline. p = sigmoid(row sum), as :meth:`predict_explain`.
        """
        if threads is None:
            threads = default_threads(len(X))
        X = self._matrix(X)
        ps: list[np.ndarray] = []
        tops: list[Top] = []
        for lo in range(0, max(len(X), 1), BATCH_ROWS):
            part = X[lo : lo + BATCH_ROWS]
            contributions = self.predictor.batch_contributions(part, threads=threads)
            ps.append(probability(contributions.sum(axis=1)))
            tops.append(self.explainer.top(part, contributions, top_k))
        fields = ("units", "contributions", "key_unit", "key_value")
        top = Top(*(np.concatenate([getattr(t, f) for t in tops]) for f in fields))
        return BatchExplanation(np.concatenate(ps), top, self.explainer)

    def one_row(self) -> OneRow:
        """This champion's one-row scorer (:mod:`models.one_row`), built on the first
        call (~0.3 s; once, whatever the threads) and kept with the champion."""
        found = self._one_row
        if found is None:
            with _ONE_ROW_LOCK:
                found = self._one_row
                if found is None:
                    found = self._one_row = OneRow.of(self)
        return found


def load_champion(
    outcome: str, tracking_uri: str | None = None, alias: str = "champion"
) -> Champion:
    """Resolve ``models:/<name>@champion`` once and load that version into memory."""
    from models import registry

    client = registry.connect(tracking_uri)
    name = registry.model_name(outcome)
    mv = client.get_model_version_by_alias(name, alias)
    with tempfile.TemporaryDirectory(prefix="sunflower-champion-") as tmp:
        folder = registry.download_model(client, outcome, str(mv.version), Path(tmp))
        predictor = CalibratedBooster.load(folder / "artifacts")
    tags = dict(mv.tags or {})
    metrics = {
        k.removeprefix("latest."): float(v) for k, v in tags.items() if k.startswith("latest.")
    }
    return Champion.from_predictor(
        predictor, outcome, name, str(mv.version), tags.get("trained_at", ""), metrics, tags
    )


def describe(champion: Champion) -> dict[str, Any]:
    """Model info for pages and APIs (no person-level data)."""
    return {
        "outcome": champion.outcome,
        "model_name": champion.model_name,
        "version": champion.version,
        "trained_at": champion.trained_at,
        "data_cutoff": champion.tags.get("data_cutoff", ""),
        "features": len(champion.feature_names),
        "metrics": champion.metrics,
    }


def drivers_json(drivers: list[Driver]) -> str:
    """Drivers as a JSON string (for storage next to a served score)."""
    return json.dumps([d.__dict__ for d in drivers], ensure_ascii=False)
