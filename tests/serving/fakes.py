"""A tiny stand-in champion with the interface of ``models.champion.Champion``.

Logistic in a handful of catalog features, so contributions are exact
(logit = base + sum of contributions) and the tests can check every number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.catalog import load_catalog
from models.champion import ChampionLike

WEIGHTS = {
    "checkins_missed_90d": 0.8,
    "tests_positive_365d": 1.1,
    "employed_now": -0.9,
    "home_visits_30d": -0.4,
    "prior_detox": 0.3,
    "days_since_contact": 0.01,
    "medicine_purchases_30d": 0.5,
}


@dataclass
class FakeDriver:
    feature: str
    value: float | None
    contribution: float
    sentence_zh: str
    sentence_en: str
    actionable: bool
    plan_item: str | None


class FakeChampion(ChampionLike):
    """No TreeSHAP tables: the protocol's defaults (predict + explain, no batch, no one-row)."""

    def __init__(self, outcome: str, version: str = "1", shift: float = 0.0) -> None:
        self.outcome = outcome
        self.model_name = f"sunflower-{outcome.replace('_', '-')}"
        self.version = version
        self.trained_at = "2026-11-01T00:00:00"
        self.feature_names = list(WEIGHTS)
        self.base_value = (-2.0 if outcome == "relapse" else -3.2) + shift
        self.metrics = {"roc_auc": 0.8, "pr_auc": 0.4}
        self._w = np.array(list(WEIGHTS.values()))
        self._features = {f.name: f for f in load_catalog().features()}

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return X * self._w

    def predict(self, X: np.ndarray) -> np.ndarray:
        logit = self.base_value + self.contributions(X).sum(axis=1)
        return 1.0 / (1.0 + np.exp(-logit))

    def explain(self, X: np.ndarray, top_k: int = 5) -> list[list[FakeDriver]]:
        contrib = self.contributions(X)
        out = []
        for row, c in zip(X, contrib, strict=True):
            order = np.argsort(-np.abs(c), kind="stable")[:top_k]
            drivers = []
            for j in order:
                f = self._features[self.feature_names[j]]
                drivers.append(
                    FakeDriver(
                        f.name,
                        float(row[j]),
                        float(c[j]),
                        f.describe(row[j], "zh"),
                        f.describe(row[j], "en"),
                        f.actionable,
                        f.plan_item,
                    )
                )
            out.append(drivers)
        return out

    def plan_items(self, drivers: list[FakeDriver]) -> list[str]:
        seen: list[str] = []
        for d in drivers:
            if d.actionable and d.contribution > 0 and d.plan_item and d.plan_item not in seen:
                seen.append(d.plan_item)
        return seen


def fake_champions(version: str = "1", shift: float = 0.0) -> dict[str, FakeChampion]:
    return {o: FakeChampion(o, version, shift) for o in ("relapse", "loss_of_contact")}
