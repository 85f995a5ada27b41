"""Synthetic caseload simulator (DESIGN §6 ``simulate``; issue 3).

Contract: :func:`simulate` writes ``persons.parquet`` and ``events.parquet`` in
the input contract (:mod:`features.contract`) and, unless ``truth=False``,
``truth.parquet`` (person_id, as_of, outcome, horizon_days, p: the probability
that the outcome's DESIGN §3 label for that cohort row turns out positive,
given the hidden state at as_of), and ``placement.yaml``, the district's placement
bases (:mod:`simulator.details`). The same arguments give the same bytes.
:func:`realism_report` checks a written district against the sourced bands.
The generative story, parameters and the meaning of p are in
docs/simulator.md; every parameter is in ``default.yaml``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from features.placement import write_placement_config
from simulator.config import SimConfig, load_config
from simulator.details import add_details
from simulator.engine import seeded_run
from simulator.io import write_events, write_persons, write_truth
from simulator.report import RealismReport, realism_report

__all__ = [
    "RealismReport",
    "SimConfig",
    "SimSummary",
    "load_config",
    "realism_report",
    "simulate",
]


@dataclass(frozen=True)
class SimSummary:
    """What a simulation wrote."""

    persons: int
    events: int
    truth_rows: int
    #: mean Monte-Carlo standard error of truth p (relapse, loss of contact)
    truth_se: tuple[float, float]
    seconds: float
    out: Path

    def __str__(self) -> str:
        truth = (
            f", {self.truth_rows:,} truth rows (MC s.e. {self.truth_se[0]:.4f} / "
            f"{self.truth_se[1]:.4f})"
            if self.truth_rows
            else ""
        )
        return f"{self.persons:,} persons, {self.events:,} events{truth} in {self.seconds:.1f} s"


def simulate(
    persons: int,
    start: date,
    end: date,
    seed: int,
    out: Path,
    truth: bool = True,
    config: SimConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimSummary:
    """Simulate ``persons`` people over [start, end] and write them to ``out``.

    ``progress`` is called with (done, total) steps (days simulated, then one
    step per file written).
    """
    if persons < 1:
        raise ValueError(f"persons must be at least 1, got {persons}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    began = time.perf_counter()
    cfg = config or load_config()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_days = (end - start).days + 1
    total = n_days + 3
    pop, events, rows = seeded_run(
        cfg, persons, start, n_days, seed, truth=truth, progress=progress, total_steps=total
    )
    details = add_details(cfg, pop, events, n_days, seed)
    del events
    pid = write_persons(pop, start, out / "persons.parquet")
    n_events = write_events(
        details.events, start, pid, out / "events.parquet", details.result_names
    )
    write_placement_config(details.placement, out / "placement.yaml")
    del details
    if progress is not None:
        progress(n_days + 2, total)
    n_truth, se = 0, (0.0, 0.0)
    if rows is not None:
        cat = {
            k: np.concatenate(v) if v else np.zeros(0)
            for k, v in vars(rows).items()
            if k != "hidden"
        }
        n_truth = write_truth(
            cat["person"].astype(np.int64),
            cat["day"].astype(np.int64),
            cat["p_relapse"],
            cat["p_loss"],
            cfg.truth.horizon_days,
            start,
            pid,
            out / "truth.parquet",
        )
        if len(cat["se_relapse"]):
            se = (float(cat["se_relapse"].mean()), float(cat["se_loss"].mean()))
    elif (out / "truth.parquet").exists():
        (out / "truth.parquet").unlink()
    if progress is not None:
        progress(total, total)
    return SimSummary(persons, n_events, n_truth, se, time.perf_counter() - began, out)
