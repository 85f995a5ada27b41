"""Explanations: contributions -> drivers in words (zh-CN and en) -> plan items.

Contract: :class:`Explainer` is built from the model's ordered feature names and
the feature catalog. It groups columns into *units* a worker can read: the
one-hot columns of a category (``drug_*`` -> "main drug: heroin") and a value
with its ``_imp`` flag form one unit each; every other column is its own unit.
:meth:`Explainer.explain` takes a feature matrix and its contributions (from
:meth:`models.predictor.CalibratedBooster.contributions`, calibrated log-odds,
base value last) and returns, per row, the ``top_k`` units by absolute
contribution as :class:`Driver` objects: the catalog's sentence filled with the
person's value, the direction and size of the effect, and — for actionable
drivers that raise the risk — the catalog's plan item. Unit contributions are
sums of column contributions, so drivers plus the rest still add up to the
calibrated log-odds.

Size words: |contribution| >= 0.5 log-odds is "strong", >= 0.15 plain, else
"slight" (documented in docs/models.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from features.catalog import Catalog, Feature, load_catalog

STRONG, MODERATE = 0.5, 0.15


@dataclass
class Driver:
    """One reason behind a score, in words."""

    feature: str
    value: float | None
    contribution: float
    sentence_zh: str
    sentence_en: str
    actionable: bool
    plan_item: str | None
    description_zh: str = ""
    description_en: str = ""


@dataclass(frozen=True)
class Unit:
    """Columns explained together; ``kind`` says how the sentence is chosen."""

    name: str
    columns: tuple[int, ...]
    kind: Literal["value", "category", "imputed"]
    features: tuple[Feature, ...]
    actionable: bool
    plan_item: str | None

    def describe(self, row: np.ndarray) -> tuple[str, str, float | None]:
        values = row[list(self.columns)]
        if self.kind == "category":
            j = int(np.argmax(values))
            f = self.features[j]
            return f.describe(1.0, "zh"), f.describe(1.0, "en"), None
        if self.kind == "imputed" and values[-1] >= 0.5:
            f = self.features[-1]
            return f.zh, f.en, None
        f, v = self.features[0], float(values[0])
        return f.describe(v, "zh"), f.describe(v, "en"), v


def _effect(c: float) -> tuple[str, str]:
    up = c > 0
    size = abs(c)
    if size >= STRONG:
        return (
            ("明显推高风险", "strongly raises the risk")
            if up
            else (
                "明显降低风险",
                "strongly lowers the risk",
            )
        )
    if size >= MODERATE:
        return ("推高风险", "raises the risk") if up else ("降低风险", "lowers the risk")
    return (
        ("略微推高风险", "slightly raises the risk")
        if up
        else (
            "略微降低风险",
            "slightly lowers the risk",
        )
    )


def build_units(feature_names: list[str], catalog: Catalog) -> list[Unit]:
    """Group the model's columns into explanation units (catalog order)."""
    by_name = {f.name: f for f in catalog.features()}
    unknown = [n for n in feature_names if n not in by_name]
    if unknown:
        raise ValueError(f"features not in the catalog: {unknown[:5]}")
    grouped: dict[str, list[int]] = {}
    for i, name in enumerate(feature_names):
        f = by_name[name]
        spec = next(s for s in catalog.specs if s.name == f.spec)
        group = spec.kind in {"person_category", "last_category"} or spec.missing.flag
        grouped.setdefault(f.spec if group else name, []).append(i)
    units = []
    for key, cols in grouped.items():
        feats = tuple(by_name[feature_names[i]] for i in cols)
        spec = next(s for s in catalog.specs if s.name == feats[0].spec)
        if spec.kind in {"person_category", "last_category"}:
            kind: Literal["value", "category", "imputed"] = "category"
        elif len(cols) > 1 and feats[-1].name.endswith("_imp"):
            kind = "imputed"
        else:
            kind = "value"
        units.append(Unit(key, tuple(cols), kind, feats, spec.actionable, spec.plan_item))
    return units


class Explainer:
    """Turns contributions into drivers and plan items for one model's features."""

    def __init__(self, feature_names: list[str], catalog: Catalog | None = None) -> None:
        self.catalog = catalog or load_catalog()
        self.feature_names = list(feature_names)
        self.units = build_units(self.feature_names, self.catalog)
        self.unit_matrix = np.zeros((len(feature_names), len(self.units)))
        for j, unit in enumerate(self.units):
            self.unit_matrix[list(unit.columns), j] = 1.0
        self.plan_texts = {p.id: (p.zh, p.en) for p in self.catalog.plan_items}

    def unit_contributions(self, contributions: np.ndarray) -> np.ndarray:
        """(n, units): column contributions summed per unit (base value dropped)."""
        return np.asarray(contributions[:, : len(self.feature_names)] @ self.unit_matrix)

    def explain(
        self, X: np.ndarray, contributions: np.ndarray, top_k: int = 5
    ) -> list[list[Driver]]:
        """Per row, the ``top_k`` units by |contribution|, largest first."""
        X = np.asarray(X, dtype=float).reshape(-1, len(self.feature_names))
        U = self.unit_contributions(np.asarray(contributions).reshape(len(X), -1))
        k = min(top_k, U.shape[1])
        mag = np.abs(U)
        top = np.argpartition(-mag, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(mag, top, 1), 1), 1)
        return [self._drivers(X[i], U[i], order[i]) for i in range(len(X))]

    def _drivers(self, row: np.ndarray, u: np.ndarray, units: np.ndarray) -> list[Driver]:
        out = []
        for j in units:
            unit, c = self.units[j], float(u[j])
            zh, en, value = unit.describe(row)
            eff_zh, eff_en = _effect(c)
            plan = unit.plan_item if unit.actionable and c > 0 else None
            out.append(
                Driver(
                    unit.name,
                    value,
                    c,
                    f"{zh}，{eff_zh}（{c:+.2f}）",
                    f"{en}: {eff_en} ({c:+.2f})",
                    unit.actionable,
                    plan,
                    zh,
                    en,
                )
            )
        return out

    def plan_items(self, drivers: list[Driver]) -> list[str]:
        """Plan item ids of the actionable risk-raising drivers, in driver order, once each."""
        return list(dict.fromkeys(d.plan_item for d in drivers if d.plan_item))
