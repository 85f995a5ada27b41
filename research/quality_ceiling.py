"""Quality on simulated districts against the oracle, and the observable ceiling (issue 5).

Run: ``python -m research.quality_ceiling [--seeds 20261128 1 2] [--persons 3000]
[--sim-config PATH] [--model-config PATH] [--outcomes relapse loss_of_contact]
[--keep DIR] [--json PATH]``. Not part of ``make bench`` (it measures quality,
not speed) and imported by nothing else.

For each seed it simulates the demo district (``make run``'s defaults:
3,000 persons, 2023-01-01..2025-12-31), builds the training panel and runs
every fold exactly as ``sunflower train`` does (:func:`models.train.fit_fold`),
then prints per fold and outcome:

* the label-based model/oracle ratios of ROC AUC and precision@10% (the
  issue's target) and LightGBM against the logistic and rule baselines;
* the *expected* ratios: the same metrics with each test row counted as
  positive with weight p and negative with weight 1 - p (p = the simulator's
  truth). They measure the ranking without the label noise of one quarter's
  few dozen positives;
* the label-noise band of the model's label-based ratios: labels redrawn from
  p on the same test rows (``--draws`` times), 10th-90th percentile. A target
  met only at the top of this band is met by luck;
* the observable ceiling: a LightGBM regressor (cross-entropy objective) fitted
  to the *true p* of the training rows with early stopping on the validation
  rows — a noise-free target, the best these features could learn — scored
  the same ways;
* with ``--attribution``, the same ceiling with the hidden state among its
  inputs (replayed in memory by :func:`simulator.hidden.hidden_state`):
  + using and absconded-not-yet-flagged, and + every hidden state (which
  should recover the oracle: a check of the harness);
* with ``--filter``, the ceiling and the model again with the posteriors of
  :mod:`research.bayes_filter` (who uses now, who has gone, given every
  event recorded before as_of) among their inputs: how much more the
  recorded history could tell than the catalog's features do.

The truth and the hidden state are used only to measure and as the ceiling
regressor's target or inputs; they are never inputs of the models trained.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from features.config import OUTCOMES, Outcome
from models.config import ModelConfig
from models.config import load_config as load_model_config
from models.metrics import select_top
from models.panel import Fold, Panel, build_panel, load_dir, make_folds
from models.train import fit_fold, xy
from research.bayes_filter import filter_posteriors
from simulator import simulate
from simulator.config import SimConfig
from simulator.config import load_config as load_sim_config
from simulator.hazard import COVARIATES
from simulator.hidden import hidden_state

START, END = date(2023, 1, 1), date(2025, 12, 31)


def expected_auc(score: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC with each row positive with weight p and negative with weight 1 - p."""
    n = len(score)
    y = np.r_[np.ones(n), np.zeros(n)]
    return float(roc_auc_score(y, np.r_[score, score], sample_weight=np.r_[p, 1 - p]))


def top_mask(score: np.ndarray, as_of: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """The top share of each day's list, ties broken at random as the metrics do."""
    frac = cfg.metrics.top_fraction
    mask, _ = select_top(
        score,
        np.zeros(len(score), dtype=int),
        as_of,
        lambda n: math.ceil(frac * n),
        "random",
        cfg.metrics.tie_seed,
    )
    return mask


def _auc_from_ranks(ranks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AUC of one score (its average ranks) against each row of a 0/1 label matrix."""
    n1 = y.sum(axis=1)
    n0 = y.shape[1] - n1
    return np.asarray((y @ ranks - n1 * (n1 + 1) / 2) / (n1 * n0))


def label_noise_band(
    score: np.ndarray, p: np.ndarray, as_of: np.ndarray, cfg: ModelConfig, draws: int, seed: int
) -> dict[str, list[float]]:
    """10th/50th/90th percentiles of label-based ratios when labels are redrawn from p."""
    rng = np.random.default_rng(seed)
    y = (rng.random((draws, len(p))) < p).astype(float)
    auc = _auc_from_ranks(rankdata(score), y) / _auc_from_ranks(rankdata(p), y)
    sel_m, sel_o = top_mask(score, as_of, cfg), top_mask(p, as_of, cfg)
    prec = y[:, sel_m].mean(axis=1) / y[:, sel_o].mean(axis=1)
    q = [10, 50, 90]
    return {
        "roc_auc": np.percentile(auc, q).round(4).tolist(),
        "precision_at_10pct": np.percentile(prec, q).round(4).tolist(),
    }


def fit_ceiling(
    panel: Panel, fold: Fold, outcome: str, cfg: ModelConfig, extra: tuple[str, ...] = ()
) -> lgb.Booster:
    """LightGBM on the true p of the training rows (early stopping on the validation rows).

    ``extra`` adds panel columns to the inputs (the hidden state, for attribution).
    """
    names, target = [*panel.feature_names, *extra], f"p_{outcome}"
    train, valid = (
        rows[rows[target].notna()]
        for rows in (panel.rows(outcome, fold.train), panel.rows(outcome, fold.valid))
    )
    c = cfg.lightgbm
    params = {
        **c.params,
        "objective": "cross_entropy",
        "num_threads": c.threads,
        "seed": c.seed,
        "deterministic": True,
        "verbose": -1,
    }
    dtrain = lgb.Dataset(xy(train, names, outcome)[0], train[target].to_numpy(float))
    dvalid = lgb.Dataset(
        xy(valid, names, outcome)[0], valid[target].to_numpy(float), reference=dtrain
    )
    return lgb.train(
        params,
        dtrain,
        num_boost_round=c.num_boost_round,
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(c.early_stopping_rounds, verbose=False)],
    )


def _ratios(
    score: np.ndarray, y: np.ndarray, p: np.ndarray, as_of: np.ndarray, cfg: ModelConfig
) -> dict[str, float]:
    """Label-based and expected ratios of one score against the oracle p."""
    sel_m, sel_o = top_mask(score, as_of, cfg), top_mask(p, as_of, cfg)
    return {
        "auc": roc_auc_score(y, score) / roc_auc_score(y, p),
        "p10": y[sel_m].mean() / y[sel_o].mean(),
        "e_auc": expected_auc(score, p) / expected_auc(p, p),
        "e_p10": p[sel_m].mean() / p[sel_o].mean(),
    }


def without_reaction(cfg: SimConfig) -> SimConfig:
    """The same world observed without the worker's reactions (sim-1's observation)."""
    o = cfg.observation
    if not hasattr(o, "follow_up_share"):
        return cfg
    quiet = o.model_copy(
        update={
            "follow_up_share": dict.fromkeys(o.follow_up_share, 0.0),
            "watch_visit_factor": 1.0,
            "family_concern_monthly": 0.0,
        }
    )
    version = f"{cfg.config_version}-no-reaction"
    return cfg.model_copy(update={"observation": quiet, "config_version": version})


def with_overrides(cfg: SimConfig, assignments: list[str]) -> SimConfig:
    """``section.key=value`` overrides (values parsed as YAML), validated like the file."""
    raw = cfg.model_dump()
    tags = []
    for item in assignments:
        path, _, value = item.partition("=")
        section, _, key = path.partition(".")
        if section not in raw or key not in raw[section]:
            raise SystemExit(f"--set {item}: no such simulator parameter")
        raw[section][key] = yaml.safe_load(value)
        tags.append(f"{key}={value}")
    raw["config_version"] = f"{cfg.config_version}-" + ",".join(tags)
    return SimConfig.model_validate(raw)


#: Hidden state added to the ceiling's inputs for attribution (``--attribution``).
ATTRIBUTION = {
    "use_abscond": ("using", "absconded"),
    "every_hidden": ("using", "absconded", *COVARIATES),
}


#: The Bayes filter's posteriors (``--filter``; :mod:`research.bayes_filter`).
FILTERED = ("f_using", "f_absconded")


def evaluate_district(
    directory: Path,
    cfg: ModelConfig,
    outcomes: list[str],
    draws: int,
    say: Callable[[str], None],
    hidden: pd.DataFrame | None = None,
    filtered: pd.DataFrame | None = None,
    unseen: bool | Path = False,
) -> list[dict[str, Any]]:
    """Every fold of every outcome on one simulated district.

    With ``hidden`` (from :func:`simulator.hidden.hidden_state`), the
    ceiling is also fitted with the hidden state among its inputs.
    """
    panel = build_panel(load_dir(directory), cfg)
    test_panel: Panel | None = None
    if isinstance(unseen, Path):  # test on a second district of new people
        other = build_panel(load_dir(unseen), cfg)
        test_panel = Panel(other.frame, panel.feature_names, panel.cutoff, panel.horizon_days)
    elif unseen:  # train on half the people, test on the other half (never seen)
        half = panel.frame["person_id"].map(lambda s: zlib.crc32(str(s).encode()) % 2 == 0)
        test_panel = Panel(panel.frame[~half].reset_index(drop=True), panel.feature_names,
                           panel.cutoff, panel.horizon_days, panel.manifest)  # fmt: skip
        panel = Panel(panel.frame[half].reset_index(drop=True), panel.feature_names,
                      panel.cutoff, panel.horizon_days, panel.manifest)  # fmt: skip
    if hidden is not None:
        frame = panel.frame.merge(hidden, on=["person_id", "as_of"], how="left")
        cols = [c for c in hidden.columns if c not in ("person_id", "as_of")]
        frame[cols] = frame[cols].astype(float)
        panel = Panel(frame, panel.feature_names, panel.cutoff, panel.horizon_days, panel.manifest)
    if filtered is not None:
        frame = panel.frame.merge(filtered, on=["person_id", "as_of"], how="left")
        frame[list(FILTERED)] = frame[list(FILTERED)].fillna(0.0)  # not tracked: never reported
        panel = Panel(frame, panel.feature_names, panel.cutoff, panel.horizon_days, panel.manifest)
        with_filter = Panel(
            frame, [*panel.feature_names, *FILTERED], panel.cutoff, panel.horizon_days
        )
    folds = make_folds(panel.dates, panel.cutoff, panel.horizon_days, cfg.folds)
    out = []
    for outcome in outcomes:
        for fold in folds:
            say(f"  {outcome} fold {fold.index}")
            res = fit_fold(panel, fold, cast("Outcome", outcome), cfg, test_panel)
            test = res.test[res.test[f"p_{outcome}"].notna()]  # as score_rows does
            Xt, y = xy(test, panel.feature_names, outcome)
            p = test[f"p_{outcome}"].to_numpy(float)
            as_of = test["as_of"].to_numpy()
            model = res.predictor.predict(Xt)
            ceiling = np.asarray(fit_ceiling(panel, fold, outcome, cfg).predict(Xt))
            attribution = {}
            if hidden is not None:
                for label, extra in ATTRIBUTION.items():
                    booster = fit_ceiling(panel, fold, outcome, cfg, extra)
                    Xh = test[[*panel.feature_names, *extra]].to_numpy(np.float64)
                    score = np.asarray(booster.predict(Xh))
                    attribution[label] = _ratios(score, y, p, as_of, cfg)
            if filtered is not None:
                names = [*panel.feature_names, *FILTERED]
                Xf = test[names].to_numpy(np.float64)
                booster = fit_ceiling(panel, fold, outcome, cfg, FILTERED)
                attribution["filter_ceiling"] = _ratios(
                    np.asarray(booster.predict(Xf)), y, p, as_of, cfg
                )
                fres = fit_fold(with_filter, fold, cast("Outcome", outcome), cfg)
                attribution["filter_model"] = {
                    **_ratios(fres.predictor.predict(Xf), y, p, as_of, cfg),
                    "beats_baselines": fres.beats_baselines(),
                }
            m = res.metrics
            out.append(
                {
                    "outcome": outcome,
                    "fold": fold.index,
                    "test": fold.describe()["test"],
                    "rows": int(len(y)),
                    "rows_without_truth": int(len(res.test) - len(test)),
                    "positives": int(y.sum()),
                    "ratio_auc": res.ratios["roc_auc"],
                    "ratio_p10": res.ratios["precision_at_10pct"],
                    "model": _ratios(model, y, p, as_of, cfg),
                    "ceiling": _ratios(ceiling, y, p, as_of, cfg),
                    "attribution": attribution,
                    "noise_band": label_noise_band(model, p, as_of, cfg, draws, fold.index),
                    "auc": {k: m[k]["roc_auc"] for k in ("lightgbm", "logistic", "rule", "oracle")},
                    "p10": {
                        k: m[k]["precision_at_10pct"]
                        for k in ("lightgbm", "logistic", "rule", "oracle")
                    },
                    "beats_baselines": res.beats_baselines(),
                }
            )
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'seed':>9} {'outcome':<16}{'f':>2} {'pos':>4}  {'AUC r':>6} {'P10 r':>6}  "
        f"{'E-AUC':>6} {'E-P10':>6}  {'noise band P10 r':>17}  {'ceil AUC':>8} {'ceil P10':>8} "
        f"{'ceil E-AUC':>10} {'ceil E-P10':>10}  {'lgb/log/rule AUC':>20}  beats"
    )
    lines = [head]
    for r in rows:
        band = r["noise_band"]["precision_at_10pct"]
        a = r["auc"]
        lines.append(
            f"{r['seed']:>9} {r['outcome']:<16}{r['fold']:>2} {r['positives']:>4}  "
            f"{r['ratio_auc']:>6.3f} {r['ratio_p10']:>6.3f}  "
            f"{r['model']['e_auc']:>6.3f} {r['model']['e_p10']:>6.3f}  "
            f"{band[0]:>8.3f}-{band[2]:<8.3f}  "
            f"{r['ceiling']['auc']:>8.3f} {r['ceiling']['p10']:>8.3f} "
            f"{r['ceiling']['e_auc']:>10.3f} {r['ceiling']['e_p10']:>10.3f}  "
            f"{a['lightgbm']:.3f}/{a['logistic']:.3f}/{a['rule']:.3f}  "
            f"{'yes' if r['beats_baselines'] else 'NO'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[20261128])
    ap.add_argument("--persons", type=int, default=3000)
    ap.add_argument("--sim-config", type=Path, default=None, help="simulator YAML")
    ap.add_argument(
        "--no-reaction",
        action="store_true",
        help="switch the worker's reactions off (no follow-up visits, no watch list, no "
        "family calls): sim-1's observation on the same hidden world",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one simulator parameter (YAML value), e.g. observation.home_visit_monthly=2",
    )
    ap.add_argument(
        "--attribution",
        action="store_true",
        help="also fit the ceiling with the hidden state among its inputs (replayed in memory)",
    )
    ap.add_argument(
        "--filter",
        action="store_true",
        help="also fit the ceiling and the model with the Bayes filter's posteriors of the "
        "hidden state given the recorded history (research.bayes_filter) among the inputs",
    )
    ap.add_argument(
        "--unseen",
        choices=["half", "district"],
        default=None,
        help="test on people the model never saw: half = train on half the people (by a "
        "hash of person_id) and test on the other half; district = train on the whole "
        "district and test on a second district of new people (seed + 100000)",
    )
    ap.add_argument("--model-config", type=Path, default=None, help="model YAML")
    ap.add_argument("--outcomes", nargs="+", default=list(OUTCOMES), choices=OUTCOMES)
    ap.add_argument("--draws", type=int, default=400, help="label redraws for the noise band")
    ap.add_argument("--keep", type=Path, default=None, help="keep districts under DIR")
    ap.add_argument("--json", type=Path, default=None, help="write every figure to PATH")
    args = ap.parse_args(argv)
    sim_cfg = load_sim_config(args.sim_config)
    if args.no_reaction:
        sim_cfg = without_reaction(sim_cfg)
    if args.set:
        sim_cfg = with_overrides(sim_cfg, args.set)
    cfg = load_model_config(args.model_config)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for seed in args.seeds:
            out = root / f"{sim_cfg.config_version}_{seed}"
            began = time.perf_counter()
            if not (out / "truth.parquet").exists():
                simulate(args.persons, START, END, seed=seed, out=out, config=sim_cfg)
            say(f"seed {seed}: {sim_cfg.config_version}, district in {out}")
            hidden = (
                hidden_state(args.persons, START, END, seed, sim_cfg) if args.attribution else None
            )
            filtered = (
                filter_posteriors(out, args.persons, START, END, seed, sim_cfg)
                if args.filter
                else None
            )
            unseen: bool | Path = args.unseen == "half"
            if args.unseen == "district":
                unseen = root / f"{sim_cfg.config_version}_{seed}_new"
                if not (unseen / "truth.parquet").exists():
                    simulate(args.persons, START, END, seed=seed + 100_000, out=unseen,
                             config=sim_cfg)  # fmt: skip
            for r in evaluate_district(
                out, cfg, args.outcomes, args.draws, say, hidden, filtered, unseen
            ):
                rows.append({"seed": seed, "sim": sim_cfg.config_version, **r})
            say(f"seed {seed}: {time.perf_counter() - began:.0f} s")
    print(
        f"# simulator {sim_cfg.config_version}, models {cfg.config_version}, {args.persons} persons"
    )
    print(_table(rows))
    if any("filter_model" in r["attribution"] for r in rows):
        print("\n# Bayes filter among the inputs (label AUC / P@10% ratios; E-ratios)")
        print(f"{'seed':>9} {'outcome':<16}{'f':>2}  {'model':>13} {'E':>13}  "
              f"{'ceiling E':>13}  {'+filter ceiling E':>17}  "
              f"{'+filter model':>13} {'E':>13} beats")  # fmt: skip
        for r in rows:
            a, m, c = r["attribution"], r["model"], r["ceiling"]
            fc, fm = a["filter_ceiling"], a["filter_model"]
            print(f"{r['seed']:>9} {r['outcome']:<16}{r['fold']:>2}  "
                  f"{m['auc']:.3f} / {m['p10']:.3f} {m['e_auc']:.3f} / {m['e_p10']:.3f}  "
                  f"{c['e_auc']:.3f} / {c['e_p10']:.3f}  {fc['e_auc']:>8.3f} / {fc['e_p10']:.3f}  "
                  f"{fm['auc']:.3f} / {fm['p10']:.3f} {fm['e_auc']:.3f} / {fm['e_p10']:.3f} "
                  f"{fm['beats_baselines']}")  # fmt: skip
    if any("use_abscond" in r["attribution"] for r in rows):
        print("\n# attribution: ceiling E-AUC / E-P@10% ratios with hidden state among its inputs")
        print(f"{'seed':>9} {'outcome':<16}{'f':>2}  {'features':>13}  {'+ using, absconded':>18}  "
              f"{'+ every hidden state':>20}")  # fmt: skip
        for r in rows:
            a, c = r["attribution"], r["ceiling"]
            cells = [f"{c['e_auc']:.3f} / {c['e_p10']:.3f}"] + [
                f"{a[k]['e_auc']:.3f} / {a[k]['e_p10']:.3f}" if k in a else "-" for k in ATTRIBUTION
            ]
            print(f"{r['seed']:>9} {r['outcome']:<16}{r['fold']:>2}  {cells[0]:>13}  "
                  f"{cells[1]:>18}  {cells[2]:>20}")  # fmt: skip
    frame = pd.DataFrame(
        [
            {
                "outcome": r["outcome"],
                "fold": r["fold"],
                "auc": r["ratio_auc"],
                "p10": r["ratio_p10"],
                "e_auc": r["model"]["e_auc"],
                "e_p10": r["model"]["e_p10"],
                "ceil_e_auc": r["ceiling"]["e_auc"],
                "ceil_e_p10": r["ceiling"]["e_p10"],
            }
            for r in rows
        ]
    )
    frame["model_ceil_e_auc"] = frame["e_auc"] / frame["ceil_e_auc"]
    frame["model_ceil_e_p10"] = frame["e_p10"] / frame["ceil_e_p10"]
    latest = frame[frame["fold"] == 0]
    print("\n# latest fold, model / observable ceiling (target: E-AUC >= 0.98, E-P@10% >= 0.95)")
    print(latest.groupby("outcome")[["model_ceil_e_auc", "model_ceil_e_p10"]]
          .agg(["mean", "min", "max"]).round(3).to_string())  # fmt: skip
    if len(args.seeds) > 1:
        print("\n# mean (min-max) over seeds")
        print(frame.groupby(["outcome", "fold"]).agg(["mean", "min", "max"]).round(3).to_string())
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
