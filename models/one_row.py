"""One row at a time: a champion's probability, contributions and drivers, fast.

Contract::

    one = OneRow.of(champion)          # a models.champion.Champion; ~0.3 s to build
    x = np.array([...])                   # 1-D, columns = champion.feature_names
    p, contributions, drivers = one.score(x, top_k=5)

``score`` returns what ``champion.predict(x[None])[0]``,
``champion.contributions(x[None])[0]`` and ``champion.explain(x[None], top_k)[0]``
return — the same probability and contributions to 1e-9 and the same
:class:`models.explain.Driver` objects (same units, order, values, words) — at a
fraction of the cost, because everything is laid out for one row:

* **contributions** from the exact TreeSHAP tables of :mod:`models.treeshap`
  (LightGBM's numbers), rearranged per tree: a row's decisions at a tree's
  splits (LightGBM's numerical rule, missing values included) are packed into
  one byte with ``np.packbits``, and that byte selects one 64-byte row of the
  tree's table holding the contributions of all the tree's features. Scoring
  one row is ~10 numpy calls (~15 µs for 300 trees, against ~250 µs for
  LightGBM's own TreeSHAP of one row, or ~1 ms for the batch layout of
  ``TreeTables.contributions``, which loops over (tree, feature) pairs). At
  build time the layout is checked against LightGBM on rows made to hit the
  model's thresholds, NaN, zero and tiny values; a model the tables decline or
  that fails the check is computed by LightGBM's TreeSHAP (slower, same numbers);
* ``p`` is the sigmoid of their sum, as in the daily job (the contributions sum
  to the calibrated log-odds);
* the **drivers** are chosen and worded with the champion's own
  :class:`~models.explain.Explainer` (its unit matrix, units and
  ``Unit.describe`` — memoised on the unit's values, bit for bit — and the
  effect words of :mod:`models.explain`), with the
  same selection as ``Explainer.explain`` (``argpartition`` then ``argsort``
  of the magnitudes) on 1-D arrays instead of (rows, units) ones.
  ``tests/models/test_one_row.py`` holds the two to equality.

No pandas; the object is read-only after construction, so threads may share it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.explain import Driver, Explainer, make_driver
from models.predictor import CalibratedBooster
from models.treeshap import MAX_NODES, ZERO_THRESHOLD, TreeTables

log = logging.getLogger(__name__)
#: Rows of the build-time check against LightGBM.
PROBE_ROWS = 64
#: Memoised unit descriptions kept per scorer (arbitrary values could grow it without end).
DESCRIBED_MAX = 100_000


class RowTables:
    """:class:`models.treeshap.TreeTables` laid out for scoring one row (see the module doc)."""

    def __init__(self, tables: TreeTables) -> None:
        n = self.n_features = tables.n_features
        self.expected = tables.expected
        trees = np.unique(tables.pair_tree)  # trees that split (constant trees: expected only)
        index = {int(t): i for i, t in enumerate(trees)}
        slots = (trees[:, None] * MAX_NODES + np.arange(MAX_NODES)).ravel()
        self.slot_feature = tables.node_feature[slots].astype(np.intp)
        threshold = tables.node_threshold[slots].copy()
        n_splits = np.isfinite(threshold).reshape(len(trees), MAX_NODES).sum(axis=1)
        threshold[~np.isfinite(threshold)] = np.nan  # padding: x <= NaN is never "left"
        self.slot_threshold = threshold
        where = {int(s): i for i, s in enumerate(slots)}

        def defaults(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            rows = rows.reshape(-1, 3)
            slot = np.array([where[int(s)] for s in rows[:, 0]], dtype=np.intp)
            return slot, rows[:, 1].astype(np.intp), rows[:, 2].astype(bool)

        self.zero_slot, self.zero_feature, self.zero_default = defaults(tables.zero_default)
        self.nan_slot, self.nan_feature, self.nan_default = defaults(tables.nan_default)
        per_tree: list[list[int]] = [[] for _ in trees]
        for pair, t in enumerate(tables.pair_tree.tolist()):
            per_tree[index[t]].append(pair)
        width = 1 << (max(len(p) for p in per_tree) - 1).bit_length()  # 1, 2, 4 or 8 values
        self.offset = np.zeros(len(trees), dtype=np.intp)
        rows = 0
        for i, k in enumerate(n_splits.tolist()):
            self.offset[i] = rows
            rows += 1 << k
        self.table = _aligned((rows, width))
        self.table_feature = np.full((len(trees), width), n + 1, dtype=np.intp)
        for i, pairs in enumerate(per_tree):
            codes = 1 << int(n_splits[i])
            block = tables.tables[pairs, :codes].T  # (codes, the tree's features)
            self.table[self.offset[i] : self.offset[i] + codes, : len(pairs)] = block
            self.table_feature[i, : len(pairs)] = tables.pair_feature[pairs]
        self.flat_feature = self.table_feature.ravel()

    def row(self, x: np.ndarray) -> np.ndarray:
        """Raw-margin contributions of one row (``n_features`` values), expected value last."""
        zeroed = np.where(np.abs(x) > ZERO_THRESHOLD, x, 0.0)  # NaN, |x| <= 1e-35f: 0
        left = zeroed.take(self.slot_feature) <= self.slot_threshold
        if len(self.zero_slot):
            hit = zeroed.take(self.zero_feature) == 0.0
            left[self.zero_slot[hit]] = self.zero_default[hit]
        if len(self.nan_slot):
            hit = np.isnan(x.take(self.nan_feature))
            left[self.nan_slot[hit]] = self.nan_default[hit]
        code = np.packbits(left, bitorder="little")  # one byte per tree: bit k = split k
        values = self.table.take(code + self.offset, axis=0)
        out = np.bincount(self.flat_feature, values.ravel(), self.n_features + 2)
        out[self.n_features] += self.expected
        return out[: self.n_features + 1]

    def probe(self, seed: int = 0) -> np.ndarray:
        """Rows that hit the model's thresholds exactly and just above, NaN, 0 and tiny values."""
        rng = np.random.default_rng(seed)
        X = rng.normal(0.0, 3.0, (PROBE_ROWS, self.n_features))
        real = np.isfinite(self.slot_threshold)
        features, thresholds = self.slot_feature[real], self.slot_threshold[real]
        pick = rng.integers(0, len(features), (PROBE_ROWS, 3 * self.n_features))
        up = rng.random(pick.shape) < 0.5
        values = np.where(up, np.nextafter(thresholds[pick], np.inf), thresholds[pick])
        # LightGBM writes thresholds beyond ±1e300 (e.g. "every number vs NaN") as ±1e300:
        # values out there are not real features, and not compared
        values = np.clip(values, -1e299, 1e299)
        X[np.arange(PROBE_ROWS)[:, None], features[pick]] = values
        for value, share in ((np.nan, 0.1), (0.0, 0.1), (1e-40, 0.03), (-0.0, 0.03)):
            X[rng.random(X.shape) < share] = value
        return X


def _aligned(shape: tuple[int, int]) -> np.ndarray:
    """Zeros of ``shape`` starting on a 64-byte boundary (one cache line per 8 values)."""
    size = shape[0] * shape[1]
    buf = np.zeros(size + 8)
    start = (-buf.ctypes.data % 64) // 8
    return buf[start : start + size].reshape(shape)


def _row_tables(predictor: CalibratedBooster) -> RowTables | None:
    tables = TreeTables.of(predictor.booster)
    if tables is None or not len(tables.pair_tree):  # declined, or no tree splits at all
        return None
    fast = RowTables(tables)
    X = fast.probe()
    theirs = predictor.booster.predict(X, pred_contrib=True, num_threads=1)
    gap = max(float(np.max(np.abs(fast.row(x) - t))) for x, t in zip(X, theirs, strict=True))
    if not gap <= 1e-9:
        log.warning("one-row TreeSHAP tables differ from LightGBM by %g: not used", gap)
        return None
    return fast


@dataclass(frozen=True)
class OneRow:
    """A champion's one-row scorer (see the module docstring)."""

    feature_names: tuple[str, ...]
    predictor: CalibratedBooster
    explainer: Explainer
    tables: RowTables | None
    #: unit -> its columns, to key the memo of a unit's words by the row's values there
    unit_columns: tuple[np.ndarray, ...] = ()
    _described: dict[tuple[int, bytes], tuple[str, str, float | None]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def of(cls, champion: Any) -> OneRow:
        """Build from a champion with ``predictor`` and ``explainer`` (models.champion.Champion)."""
        predictor: CalibratedBooster = champion.predictor
        ex: Explainer = champion.explainer
        columns = tuple(np.array(u.columns, dtype=np.intp) for u in ex.units)
        names = tuple(champion.feature_names)
        return cls(names, predictor, ex, _row_tables(predictor), columns)

    def _describe(self, j: int, x: np.ndarray) -> tuple[str, str, float | None]:
        """``Unit.describe`` of unit ``j``, memoised on the unit's values (bit for bit)."""
        key = (j, x.take(self.unit_columns[j]).tobytes())
        found = self._described.get(key)
        if found is None:
            found = self.explainer.units[j].describe(x)
            if len(self._described) < DESCRIBED_MAX:
                self._described[key] = found
        return found

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Contributions to the calibrated log-odds (features, then the base value)."""
        if self.tables is None:
            return np.asarray(self.predictor.contributions(x.reshape(1, -1))[0])
        out = self.tables.row(x) * self.predictor.a
        out[-1] += self.predictor.b
        return out

    def drivers(self, x: np.ndarray, contributions: np.ndarray, top_k: int = 5) -> list[Driver]:
        """The row's ``top_k`` drivers, largest |contribution| first (as ``Explainer.explain``)."""
        ex = self.explainer
        u = (contributions[: len(self.feature_names)].reshape(1, -1) @ ex.unit_matrix)[0]
        k = min(top_k, len(u))
        mag = np.abs(u)
        top = np.argpartition(-mag, k - 1)[:k]
        out = []
        for j in top[np.argsort(-mag[top])].tolist():
            c = float(u[j])
            zh, en, value = self._describe(j, x)
            out.append(make_driver(ex.units[j], value, c, zh, en))
        return out

    def score(self, x: np.ndarray, top_k: int = 5) -> tuple[float, np.ndarray, list[Driver]]:
        """(calibrated probability, contributions, top-k drivers) of the row ``x``."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (len(self.feature_names),):
            raise ValueError(f"expected one row of {len(self.feature_names)} values")
        c = self.contributions(x)
        p = 1.0 / (1.0 + np.exp(-float(c.sum())))
        return float(p), c, self.drivers(x, c, top_k)
