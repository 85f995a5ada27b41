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

:meth:`Explainer.top` is the vectorised half of :meth:`Explainer.explain` for
large batches (the daily job): the top units, their contributions and a
*description key* per driver, as arrays; :meth:`Explainer.describe_key` turns
a key into the unit's words, memoised (most drivers repeat a few (unit, value)
pairs). :meth:`Explainer.explain` is built on the same two, so both give the
same drivers.

Size words: |contribution| >= 0.5 log-odds is "strong", >= 0.15 plain, else
"slight" (documented in docs/models.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from features.catalog import Catalog, Feature, load_catalog

STRONG, MODERATE = 0.5, 0.15
#: Memoised descriptions kept per explainer (continuous values could grow it without end).
DESCRIBED_MAX = 200_000


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
        """(zh, en, value shown) for one feature row (see :meth:`Explainer.describe_key`)."""
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

    def plan_for(self, raises: bool) -> str | None:
        """A driver's plan item: an actionable unit's, when the driver raises the risk."""
        return self.plan_item if self.actionable and raises else None


@dataclass
class Top:
    """The ``top_k`` units of each row, largest |contribution| first (arrays of shape (n, k)).

    ``key_unit`` is the unit index, plus the number of units when an imputed
    unit's missing flag is set, plus twice that when the value is -0.0 (equal
    to 0.0 as a dict key, but printed "-0"); ``key_value`` is the unit's value
    (value units), the chosen column (category units) or 0 (flag set).
    Together they decide the unit's words: :meth:`Explainer.describe_key`.
    """

    units: np.ndarray
    contributions: np.ndarray
    key_unit: np.ndarray
    key_value: np.ndarray


#: (raises?, size) -> (zh, en) words; size 2 strong (>= STRONG), 1 plain (>= MODERATE), 0 slight.
EFFECT_WORDS: dict[tuple[bool, int], tuple[str, str]] = {
    (True, 2): ("明显推高风险", "strongly raises the risk"),
    (False, 2): ("明显降低风险", "strongly lowers the risk"),
    (True, 1): ("推高风险", "raises the risk"),
    (False, 1): ("降低风险", "lowers the risk"),
    (True, 0): ("略微推高风险", "slightly raises the risk"),
    (False, 0): ("略微降低风险", "slightly lowers the risk"),
}


def effect_of(c: float) -> tuple[bool, int]:
    """(raises?, size) of a contribution: the key of :data:`EFFECT_WORDS`."""
    size = abs(c)
    return c > 0, 2 if size >= STRONG else 1 if size >= MODERATE else 0


def sentences(zh: str, en: str, effect: tuple[bool, int], signed: str) -> tuple[str, str]:
    """A driver's zh-CN and en sentences: the unit's words, the effect's words and the
    contribution as ``signed`` text (``f"{c:+.2f}"``). The one definition of the wording
    (the daily job's JSON text is built from it with ``signed`` as a placeholder)."""
    eff_zh, eff_en = EFFECT_WORDS[effect]
    return f"{zh}，{eff_zh}（{signed}）", f"{en}: {eff_en} ({signed})"


def make_driver(unit: Unit, value: float | None, c: float, zh: str, en: str) -> Driver:
    """The driver of ``unit`` with contribution ``c``, worded from its descriptions."""
    sentence_zh, sentence_en = sentences(zh, en, effect_of(c), f"{c:+.2f}")
    return Driver(
        unit.name,
        value,
        c,
        sentence_zh,
        sentence_en,
        unit.actionable,
        unit.plan_for(c > 0),
        zh,
        en,
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
        n_units = len(self.units)
        self._first = np.array([u.columns[0] for u in self.units], np.int64)
        self._categories = [
            (j, list(u.columns)) for j, u in enumerate(self.units) if u.kind == "category"
        ]
        self._flags = [(j, u.columns[-1]) for j, u in enumerate(self.units) if u.kind == "imputed"]
        self._described: dict[tuple[int, float], tuple[str, str, float | None]] = {}
        self._n_units = n_units

    def unit_contributions(self, contributions: np.ndarray) -> np.ndarray:
        """(n, units): column contributions summed per unit (base value dropped)."""
        return np.asarray(contributions[:, : len(self.feature_names)] @ self.unit_matrix)

    def top(self, X: np.ndarray, contributions: np.ndarray, top_k: int = 5) -> Top:
        """Per row, the ``top_k`` units by |contribution|, largest first, as arrays."""
        X = np.asarray(X, dtype=float).reshape(-1, len(self.feature_names))
        U = self.unit_contributions(np.asarray(contributions).reshape(len(X), -1))
        k = min(top_k, U.shape[1])
        mag = np.abs(U)
        top = np.argpartition(-mag, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(mag, top, 1), 1), 1)
        keys = X[:, self._first]  # value units: the value in the unit's (first) column
        unit_ids = np.broadcast_to(np.arange(self._n_units), keys.shape).copy()
        for j, cols in self._categories:
            keys[:, j] = np.argmax(X[:, cols], axis=1)
        for j, col in self._flags:
            flagged = X[:, col] >= 0.5
            keys[flagged, j] = 0.0
            unit_ids[flagged, j] += self._n_units
        unit_ids[(keys == 0.0) & np.signbit(keys)] += 2 * self._n_units
        return Top(
            order,
            np.take_along_axis(U, order, 1),
            np.take_along_axis(unit_ids, order, 1),
            np.take_along_axis(keys, order, 1),
        )

    def describe_key(self, key_unit: int, key_value: float) -> tuple[str, str, float | None]:
        """(zh, en, value shown) of a unit for a :class:`Top` key; the same as
        :meth:`Unit.describe` on the row the key came from. Memoised."""
        found = self._described.get((key_unit, key_value))
        if found is not None:
            return found
        unit = self.units[key_unit % self._n_units]
        if key_unit // self._n_units == 1:  # imputed, missing flag set
            f = unit.features[-1]
            found = (f.zh, f.en, None)
        elif unit.kind == "category":
            f = unit.features[int(key_value)]
            found = (f.describe(1.0, "zh"), f.describe(1.0, "en"), None)
        else:
            f = unit.features[0]
            found = (f.describe(key_value, "zh"), f.describe(key_value, "en"), key_value)
        if len(self._described) < DESCRIBED_MAX:
            self._described[(key_unit, key_value)] = found
        return found

    def explain(
        self, X: np.ndarray, contributions: np.ndarray, top_k: int = 5
    ) -> list[list[Driver]]:
        """Per row, the ``top_k`` units by |contribution|, largest first."""
        top = self.top(X, contributions, top_k)
        return [
            self._drivers(units, cs, ks, vs)
            for units, cs, ks, vs in zip(
                top.units.tolist(),
                top.contributions.tolist(),
                top.key_unit.tolist(),
                top.key_value.tolist(),
                strict=True,
            )
        ]

    def _drivers(
        self, units: list[int], cs: list[float], ks: list[int], vs: list[float]
    ) -> list[Driver]:
        out = []
        for j, c, key, v in zip(units, cs, ks, vs, strict=True):
            zh, en, value = self.describe_key(key, v)
            out.append(make_driver(self.units[j], value, c, zh, en))
        return out

    def plan_items(self, drivers: list[Driver]) -> list[str]:
        """Plan item ids of the actionable risk-raising drivers, in driver order, once each."""
        return list(dict.fromkeys(d.plan_item for d in drivers if d.plan_item))
