"""Train a challenger, compare it with the champion, and move the alias only if gates pass.

Contract: :func:`train_and_decide` (used by ``sunflower train`` and
``sunflower retrain --as-of DATE``) for one outcome:

1. keeps the data known at ``as_of`` (:func:`models.panel.known_at`), builds the
   panel and trains (:func:`models.train.train_outcome`);
2. if a version was already trained on the same data snapshot, config and
   outcome, does nothing and reports that version's decision (safe to rerun);
3. logs the run, the model card and registers the challenger version;
4. gates: absolute — the challenger's latest-fold ROC AUC >= ``min_roc_auc``
   and ECE <= ``max_ece``; against the champion, evaluated on the *same*
   latest-fold test rows — AUC and precision@10% no worse than the champion's
   minus a tolerance, and no fairness flag the champion does not have. With no
   champion, the absolute gates decide (first run);
5. promotes with compare-and-set under a lock (:func:`models.registry.promote`):
   if another run moved the alias meanwhile, this one does not promote;
6. records the decision and its reasons as tags on both versions;
7. logs the monitoring reference profile with the version's run
   (:mod:`models.monitoring.reference`: aggregates of the newest cohort the
   model knows, no person rows).

The challenger's figures come from its fold model (trained on data before the
latest test period); the registered model is the same recipe refitted on the
newest data. The champion is evaluated as registered; if its data cutoff falls
after the start of the test period it has seen some test labels, which makes
it look better, never worse — the comparison stays conservative.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from features.config import Outcome
from models import registry
from models.card import write_card
from models.config import ModelConfig
from models.fairness import flags
from models.monitoring.reference import log_reference, reference_from_panel
from models.panel import InputData, build_panel, known_at
from models.predictor import CalibratedBooster
from models.train import Progress, TrainingResult, score_rows, train_outcome

SHAP_ROWS = 2000


@dataclass
class Decision:
    """What a training run decided, and why."""

    outcome: str
    version: str | None
    champion_before: str | None
    promoted: bool
    reasons: list[str]
    challenger: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] = field(default_factory=dict)
    result: TrainingResult | None = field(default=None, repr=False)
    reused: bool = False


def gates(
    result: TrainingResult,
    champion: CalibratedBooster | None,
    cfg: ModelConfig,
    champion_cutoff: str | None = None,
) -> tuple[bool, list[str], dict[str, float]]:
    """(passed, reasons, champion metrics on the latest fold)."""
    g = cfg.gates
    latest = result.latest
    ch = latest.metrics["lightgbm"]
    reasons, ok = [], True
    if not ch["roc_auc"] >= g.min_roc_auc:
        ok = False
        reasons.append(f"ROC AUC {ch['roc_auc']:.4f} < {g.min_roc_auc} (absolute gate)")
    if not ch["ece"] <= g.max_ece:
        ok = False
        reasons.append(f"ECE {ch['ece']:.4f} > {g.max_ece} (absolute gate)")
    if champion is None:
        reasons.append("no champion: absolute gates decide" + (" and pass" if ok else ""))
        return ok, reasons, {}
    missing = [n for n in champion.feature_names if n not in latest.test.columns]
    if missing:
        reasons.append(f"champion needs features the panel lacks ({missing[:3]}); not compared")
        return ok, reasons, {}
    X = latest.test[champion.feature_names].to_numpy(dtype=np.float64)
    scored = score_rows(latest.test, result.outcome, champion.predict(X), cfg)
    cm = scored["metrics"]
    if ch["roc_auc"] < cm["roc_auc"] - g.auc_tolerance:
        ok = False
        reasons.append(f"ROC AUC {ch['roc_auc']:.4f} worse than champion {cm['roc_auc']:.4f}")
    key = "precision_at_10pct"
    if ch[key] < cm[key] - g.precision_tolerance:
        ok = False
        reasons.append(f"precision@10% {ch[key]:.4f} worse than champion {cm[key]:.4f}")
    new = sorted(flags(latest.fairness) - flags(scored["fairness"]))
    if g.no_new_fairness_flags and new:
        ok = False
        reasons.append(f"new fairness flags: {', '.join(new)}")
    if champion_cutoff and pd.Timestamp(champion_cutoff) > min(latest.fold.test):
        reasons.append("champion's data overlaps the test period (its figures are optimistic)")
    if ok:
        reasons.append(
            f"no worse than champion (AUC {ch['roc_auc']:.4f} vs {cm['roc_auc']:.4f}, "
            f"precision@10% {ch[key]:.4f} vs {cm[key]:.4f}), no new fairness flags"
        )
    return ok, reasons, cm


def _find_trained(client: MlflowClient, outcome: str, fingerprint: str) -> Any | None:
    name = registry.model_name(outcome)
    query = f"name = '{name}' and tag.run_fingerprint = '{fingerprint}'"
    found = client.search_model_versions(query)
    return max(found, key=lambda v: int(v.version)) if found else None


def _load(client: MlflowClient, outcome: str, version: str) -> CalibratedBooster:
    with tempfile.TemporaryDirectory() as tmp:
        folder = registry.download_model(client, outcome, version, Path(tmp))
        return CalibratedBooster.load(folder / "artifacts")


def _card(result: TrainingResult, folder: Path) -> Path:
    test = result.latest.test
    sample = test.sample(min(SHAP_ROWS, len(test)), random_state=0)
    X = sample[result.feature_names].to_numpy(dtype=np.float64)
    return write_card(
        registry.evaluation_record(result), folder, (result.final.contributions(X), X)
    )


def train_and_decide(
    data: InputData,
    outcome: Outcome,
    cfg: ModelConfig,
    client: MlflowClient,
    *,
    as_of: pd.Timestamp | None = None,
    progress: Progress | None = None,
) -> Decision:
    """Train, register, gate and maybe promote one outcome's model."""
    say = progress or (lambda _m: None)
    if as_of is not None:
        data = known_at(data, as_of)
    say(f"{outcome}: building the panel")
    panel = build_panel(data, cfg)
    snapshot = panel.manifest.get("data", {}).get("snapshot_hash", "")
    fingerprint = f"{outcome}-{snapshot}-{cfg.fingerprint()}"
    before = registry.champion_version(client, outcome)
    done = _find_trained(client, outcome, fingerprint)
    if done is not None:
        tags = done.tags or {}
        return Decision(
            outcome,
            str(done.version),
            str(before.version) if before else None,
            before is not None and str(before.version) == str(done.version),
            [
                f"already trained on this data and config as version {done.version} "
                f"(decision: {tags.get('decision', 'none')}); nothing to do"
            ],
            reused=True,
        )
    result = train_outcome(panel, outcome, cfg, progress)
    champion = _load(client, outcome, str(before.version)) if before else None
    cutoff = (before.tags or {}).get("data_cutoff") if before else None
    ok, reasons, champion_metrics = gates(result, champion, cfg, cutoff)
    say(f"{outcome}: logging the run and registering the challenger")
    with tempfile.TemporaryDirectory() as tmp:
        card = _card(result, Path(tmp) / "card")
        mv = registry.log_training(
            client,
            result,
            source=data.source,
            card_dir=card.parent,
            extra_tags={"run_fingerprint": fingerprint},
        )
    version = str(mv.version)
    log_reference(client, str(mv.run_id), reference_from_panel(
        panel, outcome, result.final, result.final_fold, data.persons,
        top_fraction=cfg.metrics.top_fraction, per_worker=cfg.metrics.per_worker,
    ))  # fmt: skip
    expected = str(before.version) if before else None
    promoted = ok and registry.promote(client, outcome, version, expected)
    if ok and not promoted:
        reasons.append("the champion changed while this run was evaluated: not promoted")
    _record(client, outcome, version, expected, promoted, reasons)
    return Decision(
        outcome,
        version,
        expected,
        promoted,
        reasons,
        result.latest.metrics["lightgbm"],
        champion_metrics,
        result,
    )


def _record(
    client: MlflowClient,
    outcome: str,
    version: str,
    champion: str | None,
    promoted: bool,
    reasons: list[str],
) -> None:
    name = registry.model_name(outcome)
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    text = "; ".join(reasons)[:4900]
    decision = "promoted" if promoted else "rejected"
    for key, value in {
        "decision": decision,
        "decision_reasons": text,
        "decided_at": when,
        "compared_with": champion or "none",
    }.items():
        client.set_model_version_tag(name, version, key, value)
    if champion is not None:
        verdict = f"replaced by {version}" if promoted else f"kept against {version}"
        client.set_model_version_tag(name, champion, f"challenge.{version}", f"{verdict}: {text}")
