"""Temporal folds: no test as_of inside a training or validation label window."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from models.config import FoldConfig
from models.panel import Fold, fold_plan, make_folds, production_fold, programme_entities

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


def test_a_short_history_gets_a_smaller_fold_plan_that_says_so():
    # 14 monthly dates: too short for 6 training dates + 3M + 3M, enough for 3 + 1M + 1M
    dates, cutoff = DATES[:14], pd.Timestamp("2024-02-15")
    plan, note = fold_plan(dates, cutoff, 90, FoldConfig())
    assert note is not None and "too short for the configured folds" in note
    assert (plan.test_span, plan.valid_span, plan.min_train_dates) == ("1M", "1M", 3)
    latest = make_folds(dates, cutoff, 90, FoldConfig())[0]
    assert latest.test == (pd.Timestamp("2023-11-01"),)  # cutoff minus the horizon
    assert len(latest.train) >= 3
    assert fold_plan(DATES, CUTOFF, 90, FoldConfig()) == (FoldConfig(), None)


def test_what_is_missing_is_one_sentence():
    with pytest.raises(ValueError) as info:
        make_folds(DATES[:6], pd.Timestamp("2023-06-30"), 90, FoldConfig())
    msg = str(info.value)
    assert msg.startswith("too little history to train: the data has 4 as_of dates")
    assert "\n" not in msg and "horizon_days" in msg


def test_programme_grid_puts_each_person_on_their_own_days():
    persons = pd.DataFrame(
        {
            "person_id": ["a", "b"],
            "program_start": pd.to_datetime(["2024-01-01", "2024-01-10"]),
            "program_end": pd.to_datetime(["2024-02-05", "2024-06-30"]),
        }
    )
    got = programme_entities(persons, pd.Timestamp("2024-02-20"), 21, "7D")
    by = {p: [str(d.date()) for d in g["as_of"]] for p, g in got.groupby("person_id")}
    assert by["a"] == ["2024-01-22", "2024-01-29", "2024-02-05"]  # the last day still runs
    assert by["b"] == ["2024-01-31", "2024-02-07", "2024-02-14"]  # up to the data cutoff
    assert got["as_of"].is_monotonic_increasing


def test_configuration_is_read_from_the_home_and_typos_are_refused(tmp_path, monkeypatch):
    import yaml

    from features.config import load_label_config
    from models.config import DEFAULT_CONFIG, load_config

    monkeypatch.setenv("SUNFLOWER_HOME", str(tmp_path))
    monkeypatch.delenv("SUNFLOWER_LABELS", raising=False)
    assert load_config().source == str(DEFAULT_CONFIG.resolve())
    (tmp_path / "config").mkdir()
    mine = yaml.safe_load(DEFAULT_CONFIG.read_text())
    mine["config_version"] = "district-7"
    (tmp_path / "config" / "models.yaml").write_text(yaml.safe_dump(mine))
    assert load_config().config_version == "district-7"
    labels = yaml.safe_load((Path(__file__).parents[2] / "features" / "labels.yaml").read_text())
    labels["horizon_days"] = 28
    (tmp_path / "config" / "labels.yaml").write_text(yaml.safe_dump(labels))
    assert load_label_config().horizon_days == 28
    labels["censoring"]["planned_ends"] = "truncate"
    (tmp_path / "config" / "labels.yaml").write_text(yaml.safe_dump(labels))
    with pytest.raises(ValueError, match="planned_ends"):
        load_label_config()


def test_train_on_too_little_data_is_one_sentence_not_a_traceback(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sunflower.cli import app
    from tests.features.history import ev, events, persons

    monkeypatch.setenv("SUNFLOWER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    persons().to_csv(data / "persons.csv", index=False)
    events(ev("2023-02-01", "check_in", "attended")).to_csv(data / "events.csv", index=False)
    result = CliRunner().invoke(app, ["train", "--outcome", "relapse", "--data", str(data)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "too little history to train" in result.output
    assert "--debug" in result.output


def test_config_init_and_show(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sunflower.cli import app

    monkeypatch.setenv("SUNFLOWER_HOME", str(tmp_path))
    monkeypatch.delenv("SUNFLOWER_LABELS", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["config", "init"]).exit_code == 0
    assert (tmp_path / "config" / "labels.yaml").exists()
    assert (tmp_path / "config" / "models.yaml").exists()
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0 and "labels-2" in shown.output and "models-2" in shown.output
    bad = (tmp_path / "config" / "labels.yaml").read_text().replace("horizon_days", "horizon")
    (tmp_path / "config" / "labels.yaml").write_text(bad)
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 1 and "horizon" in shown.output


def test_offsets_put_several_as_of_dates_in_each_month(inputs, cfg):
    from models.panel import build_panel

    dense = cfg.updated(panel={"offsets_days": [0, 14]})
    panel = build_panel(inputs, dense)
    days = {d.day for d in panel.dates}
    assert days == {1, 15}
    assert all(d <= panel.cutoff for d in panel.dates)
