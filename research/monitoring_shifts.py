"""Does the monitor see a shifted world, and stay quiet in an unshifted one? (issue 16)

Run: ``python -m research.monitoring_shifts [--persons 10000] [--seed 7]
[--worlds none new_drug testing worker_leaves ageing] [--json PATH]``.
Quality, not speed: not part of ``make bench``.

For each world (no shift, and each shift of :mod:`simulator.shifts` switched
on from ``--shift-start``, 2025-03-01 by default, with the sizes of
``simulator/default.yaml``):

1. simulates the district 2023-01-01 .. 2026-03-31 (same seed in every world:
   the worlds differ only by the shift);
2. trains once, on what was recorded before ``--train`` (2025-01-01): the
   production model of each outcome as ``sunflower train`` fits it
   (:func:`models.train.fit_production`), and its reference profile
   (:func:`models.monitoring.reference.reference_from_panel`);
3. scores 12 monthly runs (the 1st of each month of 2025): features from what
   was recorded before each date (the feature engine), calibrated p, bands
   (:mod:`serving.bands`), the lists as served (top 10 % of the district, top
   2 per caseload; p descending, ties by person_id);
4. labels every served row with :func:`features.build_labels` once all
   windows have closed; a run counts as *closed* on a monitor date D only if
   ``as_of + 90 + 14 days <= D`` (records arrive at most 5 days late in the
   simulator, so its labels are then exactly what the service would have seen
   on D);
5. on each run date D runs the monitor as the scoring job would: drift of
   D's cohort against the reference, the CBPE estimate of D's lists, the
   realised quality of the runs closed by D, and the verdict
   (:func:`models.monitoring.job.run_monitor`, the one pass the service runs).

It prints, per world and outcome, the first run date with ``watch`` and with
``retrain recommended`` (and the evidence that said so), realised precision@10%
over the runs, and the CBPE estimate against the realised precision@10%.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.config import OUTCOMES
from features.jobs import run_features_job
from models.config import load_config as load_model_config
from models.monitoring.estimate import expected_quality
from models.monitoring.job import run_monitor
from models.monitoring.realised import (
    audit_attributes,
    realised_quality,
    served_labels,
)
from models.monitoring.reference import reference_from_panel
from models.monitoring.verdict import Verdict, closed_table
from models.panel import InputData, build_panel, known_at, load_dir
from models.train import fit_production
from serving.bands import THRESHOLDS, bands_of
from simulator import load_config, simulate
from simulator.config import SimConfig

WORLDS = ("none", "new_drug", "testing", "worker_leaves", "ageing")
START, END = date(2023, 1, 1), date(2026, 3, 31)
HORIZON = 90


def world_config(world: str, shift_start: date) -> SimConfig:
    cfg = load_config()
    if world == "none":
        return cfg
    shift = getattr(cfg.shifts, world).model_copy(update={"enabled": True, "start": shift_start})
    return cfg.model_copy(update={"shifts": cfg.shifts.model_copy(update={world: shift})})


def run_dates(first: date, n: int = 12) -> list[pd.Timestamp]:
    return [pd.Timestamp(first) + pd.DateOffset(months=k) for k in range(n)]


def cohort_frames(data: InputData, dates: list[pd.Timestamp]) -> pd.DataFrame:
    """Features of everyone in the cohort on each run date, with their places."""
    with tempfile.TemporaryDirectory() as tmp:
        run_features_job(data.persons, data.events, out=Path(tmp), dates=dates)
        frame = pd.read_parquet(Path(tmp) / "features.parquet")
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    places = data.persons[["person_id", "district", "town", "worker_id"]]
    return frame.merge(places, on="person_id", how="left", validate="many_to_one")


def monitor_world(
    data: InputData, train_at: pd.Timestamp, dates: list[pd.Timestamp], say: Any
) -> dict[str, Any]:
    cfg = load_model_config()
    panel = build_panel(known_at(data, train_at), cfg)
    cohort = cohort_frames(data, dates)
    out: dict[str, Any] = {}
    for outcome in OUTCOMES:
        model, fold = fit_production(panel, outcome, cfg)
        reference = reference_from_panel(panel, outcome, model, fold, data.persons)
        X = cohort[model.feature_names].to_numpy(dtype=np.float64)
        served = cohort[["as_of", "district", "town", "worker_id", "person_id"]].assign(
            p=model.predict(X)
        )
        served["band"] = bands_of(outcome, served["p"].to_numpy())
        served = audit_attributes(served, data.persons, cfg.fairness.age_bands)
        y = served_labels(served, persons=data.persons, events=data.events, outcome=outcome)
        expected = expected_quality(served)
        realised = realised_quality(served, y)
        timeline = []
        for d in dates:
            today = (served["as_of"] == d).to_numpy()
            before = (served["as_of"] < d).to_numpy()
            result = run_monitor(
                reference,
                cohort[today],
                served.loc[today, "p"].to_numpy(),
                served[before],
                y[before],
                outcome=outcome,
                as_of=d,
                observed_until=d,
                horizon_days=HORIZON,
                band_thresholds=THRESHOLDS[outcome],
            )
            timeline.append((d, result.verdict))
        drift = result.drift
        out[outcome] = summarise(timeline, expected, realised, reference)
        out[outcome]["last_drift"] = top_drift(drift)
        say(f"  {outcome}: {' '.join(v.level[0] for _, v in timeline)}")
    return out


def top_drift(drift: pd.DataFrame, k: int = 3) -> str:
    """The last run's largest district-wide input shifts (totals since records began left out)."""
    rows = drift[(drift["scope"] == "district") & drift["kind"].isin(["numeric", "category"])]
    rows = rows[~rows["cumulative"]].sort_values("psi", ascending=False).head(k)
    parts = []
    for r in rows.itertuples(index=False):
        text = f"{r.item} {r.psi:.2f}"
        if r.kind == "category":
            text += f" ({r.category} {r.category_ref:.1%} → {r.category_now:.1%})"
        parts.append(text)
    return ", ".join(parts)


def _first(timeline: list[tuple[pd.Timestamp, Verdict]], level: str) -> dict[str, Any] | None:
    rank = {"ok": 0, "watch": 1, "retrain": 2}
    for d, v in timeline:
        if rank[v.level] >= rank[level]:
            top = [e for e in v.evidence if e["level"] == v.level][:3]
            said = "; ".join(
                f"{e['what']}"
                + (f" ({e['scope']} {e['key']})" if e["scope"] != "district" else "")
                + f" = {e['value']:.3f}"
                for e in top
            )
            return {"date": str(d.date()), "evidence": said}
    return None


def summarise(
    timeline: list[tuple[pd.Timestamp, Verdict]],
    expected: pd.DataFrame,
    realised: pd.DataFrame,
    reference: dict[str, Any],
) -> dict[str, Any]:
    district = closed_table(realised, expected)
    district = district[district["scope"] == "district"]
    gap = district["precision_at_10pct_gap"]
    return {
        "levels": [v.level for _, v in timeline],
        "first_watch": _first(timeline, "watch"),
        "first_retrain": _first(timeline, "retrain"),
        "reference_expected_p10": reference["expected"].get("precision_at_10pct"),
        "realised_p10": district["precision_at_10pct_realised"].round(4).tolist(),
        "expected_p10": district["precision_at_10pct_expected"].round(4).tolist(),
        "gap_mean": float(gap.mean()),
        "gap_max_abs": float(gap.abs().max()),
        "realised_oe": (district["positives"] / district["expected_positives"]).round(3).tolist(),
    }


def _fmt_first(first: dict[str, Any] | None) -> str:
    return "never" if first is None else f"{first['date']} ({first['evidence']})"


def print_tables(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.persons:,} persons, seed {args.seed}, trained on records before "
        f"{args.train}, shifts from {args.shift_start}, 12 monthly runs from {args.train}"
    )
    print(
        "\n| world | outcome | verdicts, runs 1–12 | first watch | first retrain recommended |"
        " realised P@10% runs 1–3 → 10–12 | observed/expected positives runs 1–3 → 10–12 |"
        " largest district input PSI, run 12 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for world, per in results.items():
        for outcome, r in per.items():
            p10, oe = r["realised_p10"], r["realised_oe"]
            print(
                f"| {world} | {outcome} | {' '.join(x[0] for x in r['levels'])} | "
                f"{_fmt_first(r['first_watch'])} | {_fmt_first(r['first_retrain'])} | "
                f"{np.mean(p10[:3]):.3f} → {np.mean(p10[-3:]):.3f} | "
                f"{np.mean(oe[:3]):.2f} → {np.mean(oe[-3:]):.2f} | {r['last_drift']} |"
            )
    if "none" in results:
        print("\nCBPE estimate vs realised precision@10% (no shift, each run, district):")
        print("\n| outcome | run | expected | realised | realised − expected |")
        print("|---|---|---|---|---|")
        for outcome, r in results["none"].items():
            for k, (e, a) in enumerate(zip(r["expected_p10"], r["realised_p10"], strict=True)):
                print(f"| {outcome} | {k + 1} | {e:.3f} | {a:.3f} | {a - e:+.3f} |")
            print(
                f"| {outcome} | mean | | | {r['gap_mean']:+.3f} (max abs {r['gap_max_abs']:.3f}) |"
            )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--persons", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=WORLDS)
    ap.add_argument("--train", default="2025-01-01")
    ap.add_argument("--shift-start", default="2025-03-01")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    train_at = pd.Timestamp(args.train)
    dates = run_dates(date.fromisoformat(args.train))
    results: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()
    for world in args.worlds:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = world_config(world, date.fromisoformat(args.shift_start))
            summary = simulate(
                args.persons, START, END, args.seed, Path(tmp), truth=False, config=cfg
            )
            print(f"{world}: {summary}", flush=True)
            data = load_dir(Path(tmp))
            results[world] = monitor_world(data, train_at, dates, lambda m: print(m, flush=True))
    print(f"\n({time.perf_counter() - began:.0f} s)")
    print_tables(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
