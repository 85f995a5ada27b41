"""MLflow tracking and registry: where trained models live and who is champion.

Contract:

* :func:`connect` points MLflow at ``settings.tracking_uri`` (a sqlite file
  under ``SUNFLOWER_HOME`` by default) and returns a client; experiments
  ``sunflower-<outcome>`` keep their artifacts under ``settings.artifact_root``.
* Registered names are :data:`MODEL_NAMES` (``sunflower-relapse``,
  ``sunflower-loss-of-contact``); production is the alias ``champion`` (no
  stages). :func:`champion_version` reads it.
* :func:`log_training` logs one :class:`models.train.TrainingResult` as a run
  (config, data manifest, git commit, metrics per fold, evaluation JSON,
  model card) and registers the production model as a new version.
* :func:`promote` moves the alias under a file lock with compare-and-set:
  it succeeds only if the alias still points where the caller's decision saw
  it, so two concurrent retrains cannot both promote.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from common.settings import get_settings
from features.config import Outcome

ALIAS = "champion"
MODEL_NAMES: dict[str, str] = {
    "relapse": "sunflower-relapse",
    "loss_of_contact": "sunflower-loss-of-contact",
}
HEADLINE = (
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "precision_at_10pct",
    "recall_at_10pct",
    "precision_at_2_per_worker",
    "recall_at_2_per_worker",
)


def model_name(outcome: str) -> str:
    if outcome not in MODEL_NAMES:
        raise ValueError(f"unknown outcome {outcome!r}; choose one of {sorted(MODEL_NAMES)}")
    return MODEL_NAMES[outcome]


def connect(tracking_uri: str | None = None) -> MlflowClient:
    """Point MLflow at the tracking store and return a client for it."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri or get_settings().tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


def experiment_id(client: MlflowClient, outcome: str) -> str:
    """The outcome's experiment, created with its artifacts under ``artifact_root``."""
    name = f"sunflower-{outcome.replace('_', '-')}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if client.tracking_uri.startswith(("sqlite:", "file:")) or "://" not in client.tracking_uri:
        root = get_settings().artifact_root
        root.mkdir(parents=True, exist_ok=True)
        location = (root / name).as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:  # created concurrently
        return str(client.get_experiment_by_name(name).experiment_id)  # type: ignore[union-attr]


def champion_version(client: MlflowClient, outcome: str) -> ModelVersion | None:
    """The version the ``champion`` alias points at, or None."""
    try:
        return client.get_model_version_by_alias(model_name(outcome), ALIAS)
    except MlflowException:
        return None


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _fold_metrics(result: Any) -> None:
    for fold in result.folds:
        for model, metrics in fold.metrics.items():
            mlflow.log_metrics(
                {f"{model}.{k}": v for k, v in metrics.items() if k in HEADLINE and v == v},
                step=fold.fold.index,
            )
        mlflow.log_metrics(
            {f"ratio.{k}": v for k, v in fold.ratios.items() if v == v}, step=fold.fold.index
        )
    latest = result.latest
    mlflow.log_metrics(
        {
            f"latest.{model}.{k}": v
            for model, metrics in latest.metrics.items()
            for k, v in metrics.items()
            if k in HEADLINE and v == v
        }
        | {f"latest.ratio.{k}": v for k, v in latest.ratios.items() if v == v}
    )


def evaluation_record(result: Any) -> dict[str, Any]:
    """Aggregates of a training run (no person-level rows): logged as evaluation.json."""
    return {
        "outcome": result.outcome,
        "data_cutoff": str(result.cutoff),
        "features": result.feature_names,
        "production_fold": result.final_fold.describe(),
        "folds": [
            {
                "index": f.fold.index,
                "periods": f.fold.describe(),
                "trees": f.trees,
                "metrics": f.metrics,
                "ratios": f.ratios,
                "beats_baselines": f.beats_baselines(),
                "fairness": json.loads(f.fairness.to_json(orient="records")),
                "curves": f.curves,
            }
            for f in result.folds
        ],
    }


def log_training(
    client: MlflowClient,
    result: Any,
    *,
    source: str,
    card_dir: Path | None = None,
    extra_tags: dict[str, str] | None = None,
) -> ModelVersion:
    """Log a training run and register its production model; return the new version."""
    from models.pyfunc import log_pyfunc

    outcome: Outcome = result.outcome
    cfg = result.config
    labels = result.manifest.get("label_config", {})
    tags = {
        "outcome": outcome,
        "git_commit": git_commit(),
        "data_source": source,
        "data_cutoff": str(result.cutoff),
        "data_fingerprint": result.manifest.get("data", {}).get("snapshot_hash", ""),
        "config_version": cfg.config_version,
        "config_fingerprint": cfg.fingerprint(),
        "config_source": cfg.source or "",
        "catalog_version": result.manifest.get("catalog_version", ""),
        "label_config_version": labels.get("config_version") or "",
        "label_config_sha256": labels.get("sha256") or "",
        "label_config_source": labels.get("source") or "",
        "horizon_days": str(result.manifest.get("horizon_days", "")),
        **(extra_tags or {}),
    }
    with mlflow.start_run(
        experiment_id=experiment_id(client, outcome),
        run_name=f"{outcome} to {result.cutoff.date()}",
    ) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(
            {f"lightgbm.{k}": v for k, v in cfg.lightgbm.params.items()}
            | {
                "folds.n_folds": cfg.folds.n_folds,
                "horizon_days": result.manifest.get("horizon_days"),
                "panel.every": cfg.panel.every,
                "calibration": "platt",
                "trees": result.final.booster.num_trees(),
                "features": len(result.feature_names),
            }
        )
        _fold_metrics(result)
        mlflow.log_text(
            yaml.safe_dump(cfg.model_dump(mode="json"), allow_unicode=True), "config.yaml"
        )
        mlflow.log_dict(result.manifest, "data_manifest.json")
        if "values" in labels:
            mlflow.log_text(
                yaml.safe_dump(labels["values"], allow_unicode=True, sort_keys=False),
                "labels.yaml",
            )
        mlflow.log_dict(evaluation_record(result), "evaluation.json")
        if card_dir is not None:
            mlflow.log_artifacts(str(card_dir), "card")
        info = log_pyfunc(result.final, registered_model_name=model_name(outcome))
    version = str(info.registered_model_version)
    name = model_name(outcome)
    latest = result.latest
    vtags = tags | {"run_id": run.info.run_id, "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    vtags |= {f"latest.{k}": f"{latest.metrics['lightgbm'][k]:.4f}" for k in HEADLINE}
    for k, v in vtags.items():
        client.set_model_version_tag(name, version, k, str(v))
    return client.get_model_version(name, version)


@contextmanager
def registry_lock(outcome: str, timeout: float = 120.0) -> Iterator[None]:
    """An exclusive lock per registered model (a file under SUNFLOWER_HOME/locks)."""
    folder = get_settings().home.resolve() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{model_name(outcome)}.lock", "w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"registry lock for {outcome} held too long") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def promote(client: MlflowClient, outcome: str, version: str, expected: str | None) -> bool:
    """Point ``champion`` at ``version`` if it still points at ``expected`` (None = unset)."""
    with registry_lock(outcome):
        current = champion_version(client, outcome)
        if (str(current.version) if current else None) != (
            None if expected is None else str(expected)
        ):
            return False
        client.set_registered_model_alias(model_name(outcome), ALIAS, version)
        return True


def download_model(client: MlflowClient, outcome: str, version: str, dst: Path) -> Path:
    """A local copy of a version's model folder (MLmodel, artifacts/...) under ``dst``."""
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{model_name(outcome)}/{version}",
            dst_path=str(dst),
            tracking_uri=client.tracking_uri,
        )
    )


def champion_evaluation(client: MlflowClient, outcome: str) -> dict[str, Any]:
    """The champion's ``evaluation.json`` (fold metrics, curves, fairness tables)."""
    mv = champion_version(client, outcome)
    if mv is None:
        raise LookupError(f"no champion for {outcome}: run `sunflower train --outcome {outcome}`")
    path = mlflow.artifacts.download_artifacts(
        run_id=mv.run_id, artifact_path="evaluation.json", tracking_uri=client.tracking_uri
    )
    record: dict[str, Any] = json.loads(Path(path).read_text())
    record["version"] = str(mv.version)
    return record


def champion_card_figure(client: MlflowClient, outcome: str, figure: str) -> Path:
    """A local copy of one figure of the champion's model card (e.g. shap_summary.png)."""
    mv = champion_version(client, outcome)
    if mv is None:
        raise LookupError(f"no champion for {outcome}")
    return Path(
        mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=f"card/{figure}", tracking_uri=client.tracking_uri
        )
    )
