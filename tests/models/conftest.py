"""Fixtures for the models tests: a small simulated district, its panel, a trained store.

Everything lives under pytest's tmp folders (never the repository's var/):
SUNFLOWER_HOME and the MLflow store are pointed there for each test that needs them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from models.config import ModelConfig, load_config
from models.panel import InputData, Panel, build_panel, load_dir


def small_config() -> ModelConfig:
    """The default config shrunk to a 2-year, 400-person district."""
    return load_config().updated(
        folds={"n_folds": 2, "min_train_dates": 3},
        lightgbm={
            "params": {**load_config().lightgbm.params, "min_child_samples": 20},
            "num_boost_round": 200,
            "early_stopping_rounds": 20,
            "threads": 1,
        },
        gates={"min_roc_auc": 0.55, "max_ece": 0.08},
    )


@pytest.fixture(scope="session")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator import simulate

    out = tmp_path_factory.mktemp("district")
    simulate(400, date(2023, 1, 1), date(2024, 12, 31), 7, out, truth=True)
    return out


@pytest.fixture(scope="session")
def inputs(district: Path) -> InputData:
    return load_dir(district)


@pytest.fixture(scope="session")
def cfg() -> ModelConfig:
    return small_config()


@pytest.fixture(scope="session")
def panel(inputs: InputData, cfg: ModelConfig) -> Panel:
    return build_panel(inputs, cfg)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SUNFLOWER_HOME (and so a fresh MLflow store) for one test."""
    monkeypatch.setenv("SUNFLOWER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SUNFLOWER_MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "home"
