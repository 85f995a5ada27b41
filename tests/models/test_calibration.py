"""Platt scaling recovers a known map, and keeps contributions exact."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import PlattCalibrator, sigmoid
from models.train import fit_calibrated, xy


def test_platt_recovers_a_known_affine_map():
    rng = np.random.default_rng(0)
    margin = rng.normal(0, 2, 200_000)
    y = (rng.random(len(margin)) < sigmoid(0.5 * margin - 1.0)).astype(int)
    cal = PlattCalibrator().fit(margin, y)
    assert cal.a_ == pytest.approx(0.5, abs=0.02)
    assert cal.b_ == pytest.approx(-1.0, abs=0.03)


def test_platt_needs_both_outcomes():
    with pytest.raises(ValueError, match="both outcomes"):
        PlattCalibrator().fit(np.zeros(10), np.zeros(10))


def test_calibrated_model_is_calibrated_on_later_data(panel, cfg):
    dates = panel.dates
    X, y = xy(panel.rows("relapse", tuple(dates[:12])), panel.feature_names, "relapse")
    Xv, yv = xy(panel.rows("relapse", tuple(dates[15:19])), panel.feature_names, "relapse")
    model = fit_calibrated(X, y, Xv, yv, panel.feature_names, cfg)
    p = model.predict(Xv)
    assert p.mean() == pytest.approx(yv.mean(), rel=0.15)
    contrib = model.contributions(Xv)
    np.testing.assert_allclose(contrib.sum(axis=1), np.log(p / (1 - p)), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(contrib[:, -1], model.base_value)
