"""Metrics against values computed by hand on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import brier, capacity_metrics, ece, evaluate, roc_auc, select_top

Y = np.array([1, 0, 1, 0, 0])
S = np.array([0.9, 0.8, 0.8, 0.1, 0.1])


def test_roc_auc_counts_ties_as_half():
    # pairs (pos, neg): 0.9 beats all 3; 0.8 ties 0.8 (1/2) and beats two 0.1 -> 5.5 / 6
    assert roc_auc(Y, S) == pytest.approx(5.5 / 6)


def test_brier_and_ece():
    assert brier(Y, S) == pytest.approx((0.01 + 0.64 + 0.04 + 0.01 + 0.01) / 5)
    # bins: [0.1,0.1] -> observed 0, predicted 0.1; [0.8,0.8] -> 0.5 vs 0.8; [0.9] -> 1 vs 0.9
    assert ece(Y, S, bins=10) == pytest.approx((2 * 0.1 + 2 * 0.3 + 1 * 0.1) / 5)


def test_precision_at_k_with_ties_reports_worst_best_and_random():
    one_day = np.zeros(5)
    m = capacity_metrics(Y, S, one_day, np.array(list("aabbb")), 0.4, 1)
    # top 40% of 5 = 2 rows: 0.9 (pos) and one of the tied 0.8 (pos or neg)
    assert m["precision_at_40pct_best"] == 1.0
    assert m["precision_at_40pct_worst"] == 0.5
    assert m["precision_at_40pct"] in (0.5, 1.0)
    assert m["ties_at_40pct"] == 2
    assert m["recall_at_40pct_worst"] == 0.5
    # top 1 per worker: a -> 0.9 (pos); b -> 0.8 (pos): both hits, no tie at the cut
    assert m["precision_at_1_per_worker"] == 1.0
    assert m["recall_at_1_per_worker"] == 1.0
    assert m["ties_at_1_per_worker"] == 0


def test_the_district_list_is_cut_per_day():
    y = np.array([1, 0, 0, 0, 1, 0])
    s = np.array([0.9, 0.5, 0.1, 0.2, 0.3, 0.4])
    days = np.array([1, 1, 1, 2, 2, 2])
    mask, tied = select_top(s, y, days, lambda n: 1)
    assert mask.tolist() == [True, False, False, False, False, True]
    assert tied == 0


def test_random_tie_breaking_is_seeded():
    s = np.zeros(100)
    y = np.arange(100) % 2
    a, _ = select_top(s, y, np.zeros(100), lambda n: 10, "random", seed=3)
    b, _ = select_top(s, y, np.zeros(100), lambda n: 10, "random", seed=3)
    assert (a == b).all() and a.sum() == 10


def test_evaluate_has_every_headline_metric():
    m = evaluate(Y, S, np.zeros(5), np.array(list("aabbb")), top_fraction=0.4, per_worker=1)
    for key in (
        "roc_auc",
        "pr_auc",
        "brier",
        "ece",
        "precision_at_40pct",
        "recall_at_40pct",
        "precision_at_1_per_worker",
        "recall_at_1_per_worker",
    ):
        assert key in m
    assert m["positives"] == 2 and m["n"] == 5
