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
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.explain import Driver, Explainer
from models.predictor import CalibratedBooster

__all__ = ["Champion", "Driver", "frame_to_matrix", "load_champion"]


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

    def plan_items(self, drivers: list[Driver]) -> list[str]:
        """Plan item ids of the actionable drivers that raise the risk (一人一策)."""
        return self.explainer.plan_items(drivers)


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
