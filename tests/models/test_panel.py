"""Temporal folds: no test as_of inside a training or validation label window."""

from __future__ import annotations

import pandas as pd
import pytest

from models.config import FoldConfig
from models.panel import Fold, make_folds, production_fold

DATES = [pd.Timestamp(2023, 1, 1) + pd.DateOffset(months=k) for k in range(36)]
CUTOFF = pd.Timestamp("2026-01-05")


@pytest.mark.parametrize("horizon", [30, 90, 180])
def test_no_test_as_of_inside_a_training_label_window(horizon):
    folds = make_folds(DATES, CUTOFF, horizon, FoldConfig(n_folds=3, min_train_dates=3))
    assert len(folds) == 3
    h = pd.Timedelta(days=horizon)
    for fold in folds:
        for t in fold.test:
            for d in fold.train + fold.valid:
                assert not (d <= t < d + h), (fold.index, d, t)
        assert all(d + h <= min(fold.valid) for d in fold.train)
        assert all(d + h <= min(fold.test) for d in fold.valid)
        assert all(d + h <= CUTOFF for d in fold.test), "test labels must be complete"


def test_folds_roll_back_by_the_step():
    folds = make_folds(DATES, CUTOFF, 90, FoldConfig(n_folds=3))
    assert [f.test[-1] for f in folds] == [
        pd.Timestamp("2025-10-01"),
        pd.Timestamp("2025-07-01"),
        pd.Timestamp("2025-04-01"),
    ]
    latest = folds[0]
    assert latest.test == tuple(pd.Timestamp(f"2025-{m:02d}-01") for m in (8, 9, 10))
    assert latest.valid == tuple(pd.Timestamp(f"2025-{m:02d}-01") for m in (3, 4, 5))
    assert latest.train[-1] == pd.Timestamp("2024-12-01")


def test_production_fold_uses_the_newest_labelled_data():
    fold = production_fold(DATES, CUTOFF, 90, FoldConfig())
    assert fold.test == ()
    assert max(fold.valid) == pd.Timestamp("2025-10-01")
    assert max(fold.train) + pd.Timedelta(days=90) <= min(fold.valid)


def test_check_refuses_an_overlapping_fold():
    bad = Fold(0, (pd.Timestamp("2025-01-01"),), (pd.Timestamp("2025-02-01"),), ())
    with pytest.raises(AssertionError, match="overlaps"):
        bad.check(90)


def test_too_little_history_is_a_clear_error():
    with pytest.raises(ValueError, match="too little history"):
        make_folds(DATES[:8], pd.Timestamp("2023-09-30"), 90, FoldConfig())


def test_panel_rows_are_cohort_rows_with_audit_columns(panel):
    frame = panel.frame
    assert {"worker_id", "attr_sex", "attr_age_band", "p_relapse"} <= set(frame.columns)
    assert not any(n.startswith("sex_") for n in panel.feature_names), "sex is not an input"
    assert not {"worker_id", "person_id", "as_of"} & set(panel.feature_names)
    simulated = frame["as_of"] <= pd.Timestamp("2024-12-01")
    assert frame.loc[simulated, "p_relapse"].notna().mean() > 0.99
