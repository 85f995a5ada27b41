"""Calibration where it matters: a second district of new people, by bucket (issue 12).

Run: ``python -m research.calibration_buckets [--persons 20000] [--train-seed 21]
[--test-seed 22] [--start 2020-01-01] [--end 2024-01-01] [--as-of 2023-07-01 ...]
[--json PATH]``. Quality, not speed: not part of ``make bench``.

1. Simulates a training district (``--train-seed``) and fits the production
   model of each outcome exactly as ``sunflower train`` does
   (:func:`models.train.fit_production` on :func:`models.panel.build_panel`).
2. Simulates a second district of *new people* (``--test-seed``, same period),
   builds its features at each ``--as-of`` from what was recorded before it,
   scores them, and compares the mean predicted probability with the mean of
   the simulator's true p (the probability that the row's label is positive:
   the outcome within the horizon or until the planned end, before any exit)
   per bucket of days to the planned end and of days since the programme
   started, and overall.
3. Prints the mean |SHAP| (margin units) of ``days_to_program_end``.

:func:`bucket_table` is also what ``tests/models/test_calibration_buckets.py``
checks on a small district.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.config import OUTCOMES
from features.jobs import run_features_job
from models.config import ModelConfig, load_config
from models.panel import build_panel, load_dir
from models.predictor import CalibratedBooster
from models.train import fit_production
from simulator import simulate

TO_END = (("≤90", 0, 90), ("91–180", 91, 180), ("181–365", 181, 365), ("366–730", 366, 730),
          (">730", 731, 10**6))  # fmt: skip
SINCE_START = (("≤90", 0, 90), ("91–180", 91, 180), ("181–365", 181, 365),
               ("366–730", 366, 730), (">730", 731, 10**6))  # fmt: skip


def bucket_table(frame: pd.DataFrame, column: str, buckets: tuple[tuple[str, int, int], ...],
                 outcome: str) -> list[dict[str, Any]]:  # fmt: skip
    """Per bucket of ``column`` (days): rows, mean predicted, mean true p, ratio."""
    rows = []
    for name, lo, hi in buckets:
        sub = frame[(frame[column] >= lo) & (frame[column] <= hi)]
        pred, true = float(sub[f"pred_{outcome}"].mean()), float(sub[f"p_{outcome}"].mean())
        rows.append(
            {"bucket": name, "rows": len(sub), "predicted": pred, "true": true,
             "ratio": pred / true if len(sub) and true > 0 else float("nan")}
        )  # fmt: skip
    return rows


def score_district(
    directory: Path, models: dict[str, CalibratedBooster], as_ofs: list[str]
) -> pd.DataFrame:
    """Features at each as_of (what was recorded before it), predictions and truth p."""
    data = load_dir(directory)
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for a in as_ofs:
            run_features_job(data.persons, data.events, out=Path(tmp), as_of=a)
            frames.append(pd.read_parquet(Path(tmp) / "features.parquet"))
    frame = pd.concat(frames, ignore_index=True)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    assert data.truth is not None, "the simulated district has no truth.parquet"
    for outcome, model in models.items():
        t = data.truth[data.truth["outcome"] == outcome][["person_id", "as_of", "p"]]
        frame = frame.merge(t.rename(columns={"p": f"p_{outcome}"}), on=["person_id", "as_of"],
                            how="left", validate="one_to_one")  # fmt: skip
        X = frame[model.feature_names].to_numpy(dtype=np.float64)
        frame[f"pred_{outcome}"] = model.predict(X)
        contrib = np.asarray(model.booster.predict(X, pred_contrib=True))
        j = model.feature_names.index("days_to_program_end")
        frame[f"shap_end_{outcome}"] = np.abs(contrib[:, j])
    return frame[frame[[f"p_{o}" for o in models]].notna().all(axis=1)].reset_index(drop=True)


def train_models(directory: Path, cfg: ModelConfig) -> dict[str, CalibratedBooster]:
    panel = build_panel(load_dir(directory), cfg)
    return {o: fit_production(panel, o, cfg)[0] for o in OUTCOMES}


def report(frame: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(frame), "people": int(frame["person_id"].nunique())}
    for outcome in OUTCOMES:
        overall = frame[f"pred_{outcome}"].mean() / frame[f"p_{outcome}"].mean()
        out[outcome] = {
            "overall_ratio": float(overall),
            "mean_abs_shap_days_to_program_end": float(frame[f"shap_end_{outcome}"].mean()),
            "days_to_program_end": bucket_table(frame, "days_to_program_end", TO_END, outcome),
            "days_in_program": bucket_table(frame, "days_in_program", SINCE_START, outcome),
        }
    return out


def _print(result: dict[str, Any]) -> None:
    print(f"second district: {result['people']:,} people, {result['rows']:,} rows")
    for outcome in OUTCOMES:
        r = result[outcome]
        shap = r["mean_abs_shap_days_to_program_end"]
        print(f"\n### {outcome}: overall predicted/true {r['overall_ratio']:.3f}, "
              f"mean |SHAP| days_to_program_end {shap:.4f}")  # fmt: skip
        for col in ("days_to_program_end", "days_in_program"):
            print(f"| {col} | rows | mean predicted | mean true p | ratio |")
            print("|---|---|---|---|---|")
            for b in r[col]:
                print(f"| {b['bucket']} | {b['rows']:,} | {b['predicted']:.4f} | "
                      f"{b['true']:.4f} | {b['ratio']:.3f} |")  # fmt: skip


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--train-seed", type=int, default=21)
    ap.add_argument("--test-seed", type=int, default=22)
    ap.add_argument("--start", default="2020-01-01")
    ap.add_argument("--end", default="2024-01-01")
    ap.add_argument("--as-of", nargs="+", default=["2023-07-01", "2023-08-01", "2023-09-01",
                                                    "2023-10-01"])  # fmt: skip
    ap.add_argument("--keep", type=Path, default=None, help="keep the districts here")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        train_dir, test_dir = root / f"train-{args.train_seed}", root / f"test-{args.test_seed}"
        for seed, d in ((args.train_seed, train_dir), (args.test_seed, test_dir)):
            if not (d / "events.parquet").exists():
                print(simulate(args.persons, start, end, seed, d, truth=True), flush=True)
        models = train_models(train_dir, load_config())
        result = report(score_district(test_dir, models, args.as_of))
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
