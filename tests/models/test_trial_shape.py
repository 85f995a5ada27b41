"""A district in a different shape, end to end, with no code change (issue 12).

A 24-week weekly-visit treatment cohort in its own format (own column names
and codes, no ``lost_contact`` events; ``tests/fixtures/trial_cohort.py``) goes
through the real command: ``sunflower ingest --mapping``, ``train`` for both
outcomes and ``score``. Its rules are configuration only, kept under
``SUNFLOWER_HOME/config/`` (the examples in ``docs/examples/``): a 28-day
horizon, relapse as 2 consecutive weeks with a positive or missing test, loss
of contact derived from silence or missed check-ins, each person on their own
programme days. Every row the evaluation uses had its whole window observed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures.trial_cohort import write_trial_cohort

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("trial_shape")]
ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "docs" / "examples"


def _sunflower(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("sunflower") or str(Path(sys.executable).with_name("sunflower"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SUNFLOWER_"))}
    env["SUNFLOWER_HOME"] = str(home)
    return subprocess.run(
        [exe, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trial")
    data = write_trial_cohort(root / "source")
    home = root / "home"
    (home / "config").mkdir(parents=True)
    shutil.copy(EXAMPLES / "labels-trial.yaml", home / "config" / "labels.yaml")
    shutil.copy(EXAMPLES / "models-trial.yaml", home / "config" / "models.yaml")
    done = _sunflower(home, "ingest", str(data), "--mapping", str(EXAMPLES / "mapping-trial.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    for outcome in ("relapse", "loss_of_contact"):
        done = _sunflower(home, "train", "--outcome", outcome)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
    return home


def test_both_outcomes_train_and_record_the_district_rules(trained: Path) -> None:
    from mlflow import MlflowClient

    store = f"sqlite:///{trained / 'mlflow.db'}"  # both URIs: never a registry set elsewhere
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    for name in ("sunflower-relapse", "sunflower-loss-of-contact"):
        version = client.get_model_version_by_alias(name, "champion")
        run = client.get_run(version.run_id)
        assert run.data.tags["label_config_version"] == "trial-labels-1"
        assert run.data.tags["config_version"] == "trial-models-1"
        assert run.data.tags["horizon_days"] == "28"
        assert run.data.tags["label_config_source"].endswith("config/labels.yaml")


def test_score_publishes_both_outcomes(trained: Path) -> None:
    done = _sunflower(trained, "score", "--date", "2024-01-03")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published run" in done.stdout


def test_evaluation_uses_only_rows_whose_fate_was_knowable(
    trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.settings import get_settings
    from features.config import load_label_config
    from models.config import load_config
    from models.panel import build_panel, load_store, make_folds

    monkeypatch.setenv("SUNFLOWER_HOME", str(trained))
    monkeypatch.delenv("SUNFLOWER_LABELS", raising=False)
    cfg, labels = load_config(), load_label_config()
    panel = build_panel(load_store(get_settings().db_url), cfg, labels=labels)
    assert panel.horizon_days == 28
    frame = panel.frame
    ends = pd.to_datetime(
        frame["person_id"].map(
            load_store(get_settings().db_url).persons.set_index("person_id")["program_end"]
        )  # fmt: skip
    ) + pd.Timedelta(days=1)
    window_end = (frame["as_of"] + pd.Timedelta(days=28)).where(
        frame["as_of"] + pd.Timedelta(days=28) < ends, ends
    )
    for outcome in ("relapse", "loss_of_contact"):
        known = frame[f"label_{outcome}"].notna()
        assert known.any()
        assert (window_end[known] <= panel.cutoff).all()
        # and the rows left out near the cutoff are left out whatever happened
        late = window_end > panel.cutoff
        assert frame.loc[late, f"label_{outcome}"].isna().all()
    for fold in make_folds(panel.dates, panel.cutoff, panel.horizon_days, cfg.folds):
        assert max(fold.test) + pd.Timedelta(days=28) <= panel.cutoff
