"""Explanations: native TreeSHAP agrees with shap's TreeExplainer; drivers read right."""

from __future__ import annotations

import numpy as np
import pytest

from models.champion import Champion
from models.explain import Explainer
from models.train import fit_calibrated, xy


@pytest.fixture(scope="module")
def model(panel, cfg):
    dates = panel.dates
    X, y = xy(panel.rows("relapse", tuple(dates[:12])), panel.feature_names, "relapse")
    Xv, yv = xy(panel.rows("relapse", tuple(dates[15:19])), panel.feature_names, "relapse")
    return fit_calibrated(X, y, Xv, yv, panel.feature_names, cfg), Xv


def test_native_contributions_agree_with_shap_tree_explainer(model):
    import shap

    predictor, X = model
    X = X[:300]
    ours = predictor.contributions(X)
    explainer = shap.TreeExplainer(predictor.booster, model_output="raw")
    theirs = explainer.shap_values(X) * predictor.a
    np.testing.assert_allclose(ours[:, :-1], theirs, atol=1e-6)
    base = np.ravel(explainer.expected_value)[0] * predictor.a + predictor.b
    assert ours[0, -1] == pytest.approx(base, abs=1e-6)


def test_drivers_have_sentences_sign_size_and_plan_items(model):
    predictor, X = model
    champion = Champion.from_predictor(predictor, "relapse")
    drivers = champion.explain(X[:50], top_k=5)
    assert len(drivers) == 50 and all(len(d) == 5 for d in drivers)
    contrib = champion.contributions(X[:50])
    units = champion.explainer.unit_contributions(contrib)
    for row, ds in enumerate(drivers):
        sizes = [abs(d.contribution) for d in ds]
        assert sizes == sorted(sizes, reverse=True)
        assert sizes[0] == pytest.approx(np.abs(units[row]).max())
        for d in ds:
            assert d.sentence_zh and d.sentence_en
            assert ("推高" in d.sentence_zh) == (d.contribution > 0)
            assert ("raises" in d.sentence_en) == (d.contribution > 0)
            assert f"{d.contribution:+.2f}" in d.sentence_en
            if d.plan_item:
                assert d.actionable and d.contribution > 0
                assert d.plan_item in champion.plan_texts
        items = champion.plan_items(ds)
        assert items == list(dict.fromkeys(d.plan_item for d in ds if d.plan_item))


def test_units_merge_one_hots_and_missing_flags(panel):
    explainer = Explainer(panel.feature_names)
    names = {u.name: u for u in explainer.units}
    assert names["drug"].kind == "category" and len(names["drug"].columns) == 5
    assert names["days_since_positive"].kind == "imputed"
    row = np.zeros(len(panel.feature_names))
    drug = names["drug"]
    row[drug.columns[1]] = 1.0  # methamphetamine
    zh, en, value = drug.describe(row)
    assert "冰毒" in zh and "methamphetamine" in en and value is None
    dsp = names["days_since_positive"]
    row[dsp.columns[0]], row[dsp.columns[1]] = 3650, 1
    assert dsp.describe(row)[1] == "no positive test on record"
    row[dsp.columns[0]], row[dsp.columns[1]] = 12, 0
    assert dsp.describe(row)[1] == "12 days since the last positive test"


def test_single_row_predict_is_fast(model):
    import time

    predictor, X = model
    row = np.ascontiguousarray(X[:1])
    predictor.predict(row)
    start = time.perf_counter()
    for _ in range(200):
        predictor.predict(row)
    per_call = (time.perf_counter() - start) / 200
    assert per_call < 1e-3, f"{per_call * 1e6:.0f} µs per single-row predict"
