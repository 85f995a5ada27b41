"""LightGBM's path-dependent TreeSHAP as lookup tables, vectorised over rows.

Contract: :meth:`TreeTables.of` reads a LightGBM booster's trees and returns
tables that give, for any feature matrix, the same per-feature contributions
(raw margin, expected value in the last column) as
``booster.predict(X, pred_contrib=True)``, equal up to floating-point rounding
(~1e-15), or ``None`` when the model has something the tables do not cover
(categorical splits, linear trees, more than one tree per iteration, averaged
output, a tree with more than :data:`MAX_NODES` splits, an empty node).
:meth:`TreeTables.contributions` computes them in blocks of rows with numpy.

Why: LightGBM's TreeSHAP walks every tree for every row (O(leaves x depth^2)
per tree and row); for the daily job's 100,000+ rows x 300 trees that is
~15 s per outcome on one core. With at most :data:`MAX_NODES` splits a tree's
contributions depend only on which way the row goes at each split: an 8-bit
*code* per (row, tree). The table of contributions for every code is computed
once per model (the per-leaf Shapley formula below, exact), and scoring is
then one comparison per split (packed into codes by ``np.packbits``) and one
table lookup per (tree, feature it splits on).

Per leaf with value ``v`` whose path splits on the distinct features ``U``
(|U| = M): for feature ``j``, ``z_j`` is the product of the cover fractions
(child count / node count) along the path's splits on ``j`` and ``o_j`` is 1
when the row goes the path's way at all of them, else 0. The leaf's game
``g(S) = v * prod_{j in S} o_j * prod_{j in U - S} z_j`` has the Shapley value
``phi_i = v (o_i - z_i) sum_s s!(M-s-1)!/M! e_s``, with ``e_s`` the
coefficient of ``t^s`` in ``prod_{j != i} (z_j + o_j t)``; the tree's
contribution is the sum over its leaves. This is the quantity LightGBM's
recursive TreeSHAP computes (repeated features on a path are merged the same
way: fractions multiplied).

Splits follow LightGBM's numerical decision: inputs with ``|x| <= 1e-35f`` are
zero (LightGBM drops them when it reads a dense row), NaN is 0 unless the
split's missing type is NaN, and a missing-type Zero or NaN value goes the
default way.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np

#: Splits per tree the 8-bit codes can hold (LightGBM trees of up to 9 leaves).
MAX_NODES = 8
#: Rows per block: the (tree x 8, rows) comparison matrix stays a few MB.
BLOCK_ROWS = 4096
#: LightGBM's kZeroThreshold is the float literal 1e-35f: 1.0000000180025095e-35 as a double.
ZERO_THRESHOLD = float(np.float32(1e-35))
CODES = 1 << MAX_NODES


@dataclass
class TreeTables:
    """Per-(tree, feature) contribution tables indexed by the tree's split code."""

    n_features: int
    expected: float  # sum of the trees' expected values (last column)
    node_feature: np.ndarray  # (trees * MAX_NODES,) feature of each split slot (0 in padding)
    node_threshold: np.ndarray  # (trees * MAX_NODES,) threshold (-inf in padding: never left)
    zero_default: np.ndarray  # (k, 3): slot, feature, default-left of missing-type Zero splits
    nan_default: np.ndarray  # (k, 3): the same for missing-type NaN splits
    pair_tree: np.ndarray  # (pairs,) tree of each (tree, feature) pair
    pair_feature: np.ndarray  # (pairs,) feature of each pair
    tables: np.ndarray  # (pairs, CODES) contribution of the pair's feature per code

    def __post_init__(self) -> None:
        # each distinct (feature, threshold) is compared once per row; slots gather from them
        pairs = np.stack([self.node_feature, self.node_threshold])
        real = np.isfinite(self.node_threshold)
        unique, inverse = np.unique(pairs[:, real], axis=1, return_inverse=True)
        self._slot_source = np.full(len(self.node_feature), unique.shape[1], np.int64)
        self._slot_source[real] = inverse.ravel()  # padding: the extra all-False row
        self._unique_threshold = unique[1].copy()
        features = unique[0].astype(np.int64)
        cuts = np.flatnonzero(np.diff(features)) + 1
        bounds = np.concatenate([[0], cuts, [len(features)]]).astype(np.int64)
        self._groups = [
            (int(features[lo]), int(lo), int(hi))
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
            if hi > lo
        ]

    @property
    def n_trees(self) -> int:
        return len(self.node_feature) // MAX_NODES

    @classmethod
    def of(cls, booster: Any) -> TreeTables | None:
        """Tables for ``booster`` (a ``lightgbm.Booster``), or None when not covered."""
        model = booster.dump_model()
        if model.get("num_tree_per_iteration", 1) != 1 or model.get("average_output"):
            return None
        n_features = int(model["max_feature_idx"]) + 1
        trees = model["tree_info"]
        node_feature = np.zeros(len(trees) * MAX_NODES, np.int64)
        node_threshold = np.full(len(trees) * MAX_NODES, -np.inf)
        zero_default: list[tuple[int, int, int]] = []
        nan_default: list[tuple[int, int, int]] = []
        pair_tree: list[int] = []
        pair_feature: list[int] = []
        tables: list[np.ndarray] = []
        expected = 0.0
        for t, info in enumerate(trees):
            tree = _Tree.read(info["tree_structure"])
            if tree is None or len(tree.splits) > MAX_NODES:
                return None
            expected += tree.expected_value()
            for k, (feature, threshold, missing, default_left) in enumerate(tree.splits):
                slot = t * MAX_NODES + k
                node_feature[slot], node_threshold[slot] = feature, threshold
                if missing == "Zero":
                    zero_default.append((slot, feature, int(default_left)))
                elif missing == "NaN":
                    nan_default.append((slot, feature, int(default_left)))
                elif missing != "None":
                    return None
            for feature, table in tree.tables().items():
                pair_tree.append(t)
                pair_feature.append(feature)
                tables.append(table)
        return cls(
            n_features,
            expected,
            node_feature,
            node_threshold,
            np.array(zero_default, np.int64).reshape(-1, 3),
            np.array(nan_default, np.int64).reshape(-1, 3),
            np.array(pair_tree, np.int64),
            np.array(pair_feature, np.int64),
            np.array(tables, np.float64).reshape(-1, CODES),
        )

    def codes(self, XT: np.ndarray) -> np.ndarray:
        """(trees, rows) uint8 split codes of a transposed block ``XT`` (features, rows)."""
        zeroed = np.where(np.isnan(XT) | (np.abs(XT) <= ZERO_THRESHOLD), 0.0, XT)
        compared = np.zeros((len(self._unique_threshold) + 1, XT.shape[1]), bool)
        for f, lo, hi in self._groups:  # one broadcast comparison per feature
            np.less_equal(zeroed[f], self._unique_threshold[lo:hi, None], out=compared[lo:hi])
        left = compared[self._slot_source]  # (trees * MAX_NODES, rows), tree-major
        for slot, feature, default in self.zero_default:
            left[slot, zeroed[feature] == 0.0] = bool(default)
        for slot, feature, default in self.nan_default:
            left[slot, np.isnan(XT[feature])] = bool(default)
        bits = left.view(np.uint8).reshape(self.n_trees, MAX_NODES, -1)
        code = bits[:, 0].copy()
        for k in range(1, MAX_NODES):
            code |= bits[:, k] << np.uint8(k)
        return code

    def contributions(self, X: np.ndarray, block_rows: int = BLOCK_ROWS) -> np.ndarray:
        """(n, features + 1): like ``booster.predict(X, pred_contrib=True)``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} columns, got {X.shape[1]}")
        n = len(X)
        out = np.zeros((n, self.n_features + 1))
        out[:, -1] = self.expected
        scratch = np.empty(min(n, block_rows))
        for lo in range(0, n, block_rows):
            hi = min(lo + block_rows, n)
            codes = self.codes(np.ascontiguousarray(X[lo:hi].T)).astype(np.intp)
            acc = np.zeros((self.n_features, hi - lo))
            tmp = scratch[: hi - lo]
            for table, t, f in zip(self.tables, self.pair_tree, self.pair_feature, strict=True):
                np.take(table, codes[t], out=tmp)
                acc[f] += tmp
            out[lo:hi, : self.n_features] = acc.T
        return out


@dataclass
class _Tree:
    """One tree's splits (depth-first order) and leaves with their paths."""

    splits: list[tuple[int, float, str, bool]]  # feature, threshold, missing type, default left
    leaves: list[tuple[float, float, list[tuple[int, bool, float]]]]  # value, count, path
    root_count: float

    @classmethod
    def read(cls, root: dict[str, Any]) -> _Tree | None:
        splits: list[tuple[int, float, str, bool]] = []
        leaves: list[tuple[float, float, list[tuple[int, bool, float]]]] = []
        if "leaf_value" in root:
            return cls(splits, [(float(root["leaf_value"]), 1.0, [])], 1.0)
        stack: list[tuple[dict[str, Any], list[tuple[int, bool, float]]]] = [(root, [])]
        while stack:
            node, path = stack.pop()
            if "leaf_index" in node:
                if "leaf_coeff" in node or not node.get("leaf_count"):
                    return None  # linear leaf, or no count to weigh the path by
                leaves.append((float(node["leaf_value"]), float(node["leaf_count"]), path))
                continue
            if node.get("decision_type") != "<=" or not node.get("internal_count"):
                return None
            k = len(splits)
            splits.append(
                (
                    int(node["split_feature"]),
                    float(node["threshold"]),
                    str(node.get("missing_type", "None")),
                    bool(node.get("default_left", True)),
                )
            )
            count = float(node["internal_count"])
            for child, left in ((node["right_child"], False), (node["left_child"], True)):
                share = _count(child) / count
                stack.append((child, [*path, (k, left, share)]))
        return cls(splits, leaves, float(root["internal_count"]))

    def expected_value(self) -> float:
        """LightGBM's ``Tree::ExpectedValue``: leaf values weighted by their counts."""
        if not self.splits:
            return self.leaves[0][0]
        return sum(count / self.root_count * value for value, count, _ in self.leaves)

    def tables(self) -> dict[int, np.ndarray]:
        """Feature -> contribution per code (bit k of a code: the row goes left at split k)."""
        codes = np.arange(CODES)
        bits = ((codes[None, :] >> np.arange(MAX_NODES)[:, None]) & 1).astype(bool)
        out: dict[int, np.ndarray] = {}
        for value, _count, path in self.leaves:
            features: dict[int, tuple[float, np.ndarray]] = {}
            for k, left, share in path:
                f = self.splits[k][0]
                z, o = features.get(f, (1.0, np.ones(CODES)))
                features[f] = (z * share, o * (bits[k] == left))
            m = len(features)
            weights = [factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)]
            items = list(features.items())
            for i, (f, (z_i, o_i)) in enumerate(items):
                poly = [np.ones(CODES)]  # coefficients of prod_{j != i} (z_j + o_j t)
                for j, (_g, (z_j, o_j)) in enumerate(items):
                    if j == i:
                        continue
                    nxt = [p * z_j for p in poly] + [np.zeros(CODES)]
                    for s, p in enumerate(poly):
                        nxt[s + 1] = nxt[s + 1] + p * o_j
                    poly = nxt
                total = sum(w * p for w, p in zip(weights, poly, strict=True))
                phi = value * (o_i - z_i) * total
                out[f] = out[f] + phi if f in out else phi
        return out


def _count(node: dict[str, Any]) -> float:
    return float(node["leaf_count"] if "leaf_index" in node else node["internal_count"])
