"""The realism report: a written district measured against the sourced bands.

Contract: :func:`realism_report` reads only ``persons.parquet`` and
``events.parquet`` (what any model would see) and returns a
:class:`RealismReport` — a dict ``figure -> {value, band, inside}`` that
prints as a table. Figures (bands in ``default.yaml`` ``report``):

- ``relapse_12m`` / ``relapse_36m``: Kaplan-Meier share with a first
  positive-or-refused test within 12 / 36 months of programme start, with
  delayed entry for people already in the programme on the first day and
  censoring at exit, lost contact or the end of the data;
- ``first_quarter_share``: of first relapses within 12 months among people
  who entered during the period with a full first year observed, the share
  in months 1-3;
- ``loss_of_contact_yearly``: ``lost_contact`` events per person-year in
  contact;
- ``execution_rate``: at each month start, people in the programme and not
  lost over all people under an agreement; mean over months;
- ``worker_ratio``: at each month start, people in the programme per worker
  with a caseload; mean over months.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from simulator.config import SimConfig, load_config

_DAY = np.timedelta64(1, "D")
_NEVER = np.datetime64("2200-01-01", "us")


class RealismReport(dict[str, dict[str, Any]]):
    """``figure -> {"value", "band", "inside"}``; ``str()`` is a readable table."""

    @property
    def all_inside(self) -> bool:
        return all(v["inside"] for v in self.values())

    def __str__(self) -> str:
        lines = [f"{'figure':<24}{'value':>9}   band            inside"]
        for name, v in self.items():
            lo, hi = v["band"]
            mark = "yes" if v["inside"] else "NO"
            lines.append(f"{name:<24}{v['value']:>9.3f}   [{lo:.2f}, {hi:.2f}]    {mark}")
        return "\n".join(lines)

    def __rich__(self) -> str:
        return str(self)


def _first(events: pd.DataFrame, mask: pd.Series) -> pd.Series:
    return events.loc[mask].groupby("person_id")["ts"].min()


def _km_share(entry: np.ndarray, stop: np.ndarray, event: np.ndarray, at: int) -> float:
    """1 - Kaplan-Meier survival at day ``at``, with delayed entry (days)."""
    horizon = at + 1
    entry = np.clip(entry, 0, horizon)
    stop = np.clip(stop, 0, horizon)
    starts = np.bincount(entry, minlength=horizon + 1)
    ends = np.bincount(stop, minlength=horizon + 1)
    events = np.bincount(stop[event & (stop < horizon)], minlength=horizon + 1)
    at_risk = np.cumsum(starts) - np.concatenate([[0], np.cumsum(ends)[:-1]])
    hazard = np.divide(events, at_risk, out=np.zeros(horizon + 1), where=at_risk > 0)
    return float(1 - np.prod(1 - hazard[:horizon]))


def _relapse(
    persons: pd.DataFrame, ev: pd.DataFrame, t0: np.datetime64, t1: np.datetime64
) -> dict[str, float]:
    test = ev["type"].isin(["urine_test", "hair_test"]) & ev["result"].isin(["positive", "refused"])
    first_pos = _first(ev, test)
    stop_at = pd.concat(
        [_first(ev, ev["type"] == "program_exit"), _first(ev, ev["type"] == "lost_contact")],
        axis=1,
    ).min(axis=1)
    p = persons.set_index("person_id")
    start = p["program_start"].to_numpy("datetime64[us]")
    pos = first_pos.reindex(p.index).to_numpy("datetime64[us]")
    cens = stop_at.reindex(p.index).to_numpy("datetime64[us]")
    pos = np.where(np.isnat(pos), _NEVER, pos)
    cens = np.minimum(np.where(np.isnat(cens), _NEVER, cens), t1)
    stop = np.minimum(pos, cens)
    entry = ((np.maximum(start, t0) - start) / _DAY).astype(np.int64)
    stop_d = np.maximum(((stop - start) / _DAY).astype(np.int64), entry)
    event = pos <= cens
    out = {
        "relapse_12m": _km_share(entry, stop_d, event, 365),
        "relapse_36m": _km_share(entry, stop_d, event, 1095),
    }
    full = (start >= t0) & (start + 365 * _DAY <= t1) & event & (stop_d < 365)
    out["first_quarter_share"] = float(np.mean(stop_d[full] < 91)) if full.any() else float("nan")
    return out


def _contact(
    persons: pd.DataFrame, ev: pd.DataFrame, t0: np.datetime64, t1: np.datetime64
) -> dict[str, float]:
    p = persons.set_index("person_id")
    start = np.maximum(p["program_start"].to_numpy("datetime64[us]"), t0)
    exits = _first(ev, ev["type"] == "program_exit").reindex(p.index).to_numpy("datetime64[us]")
    exits = np.minimum(np.where(np.isnat(exits), _NEVER, exits), t1)
    lost = ev.loc[ev["type"].isin(["lost_contact", "contact_restored", "program_exit"])]
    lost = lost.sort_values(["person_id", "ts"], kind="stable")
    nxt = lost.groupby("person_id")["ts"].shift(-1)
    spells = lost.loc[lost["type"] == "lost_contact"].assign(until=nxt)
    lo = spells["ts"].to_numpy("datetime64[us]")
    hi = spells["until"].to_numpy("datetime64[us]")
    hi = np.minimum(np.where(np.isnat(hi), _NEVER, hi), t1)
    in_program = float(np.clip((exits - start) / _DAY, 0, None).sum())
    lost_days = float(np.clip((hi - lo) / _DAY, 0, None).sum())
    first_days = pd.date_range(pd.Timestamp(t0).ceil("D"), pd.Timestamp(t1), freq="MS")
    months = first_days.to_numpy("datetime64[us]")
    workers = p["worker_id"].to_numpy()
    execution, ratio = [], []
    for m in months:
        active = (start <= m) & (exits > m)
        n_lost = int(((lo < m) & (hi >= m)).sum())
        n_active = int(active.sum())
        if n_active == 0:
            continue
        execution.append(1 - n_lost / n_active)
        ratio.append((n_active - n_lost) / len(np.unique(workers[active])))
    return {
        "loss_of_contact_yearly": len(lo) / max(in_program - lost_days, 1.0) * 365.25,
        "execution_rate": float(np.mean(execution)) if execution else float("nan"),
        "worker_ratio": float(np.mean(ratio)) if ratio else float("nan"),
    }


def realism_report(out: Path, config: SimConfig | None = None) -> RealismReport:
    """Measure the district written in ``out`` against the configured bands."""
    cfg = config or load_config()
    out = Path(out)
    persons = pd.read_parquet(
        out / "persons.parquet", columns=["person_id", "program_start", "worker_id"]
    )
    persons["program_start"] = pd.to_datetime(persons["program_start"]).astype("datetime64[us]")
    kinds = ["urine_test", "hair_test", "program_exit", "lost_contact", "contact_restored"]
    table = pq.read_table(
        out / "events.parquet",
        columns=["person_id", "ts", "type", "result"],
        filters=[("type", "in", kinds)],
    )
    ev = table.to_pandas()
    times = pq.read_table(out / "events.parquet", columns=["ts"]).column("ts")
    t0 = np.datetime64(times.combine_chunks().to_numpy().min(), "D").astype("datetime64[us]")
    t1 = times.combine_chunks().to_numpy().max().astype("datetime64[us]")
    figures: dict[str, float] = {**_relapse(persons, ev, t0, t1), **_contact(persons, ev, t0, t1)}
    bands: dict[str, Any] = cfg.report.model_dump()
    report = RealismReport()
    for name, value in figures.items():
        lo, hi = bands[name]
        report[name] = {"value": value, "band": (lo, hi), "inside": bool(lo <= value <= hi)}
    return report
