"""One monitoring pass for one outcome on one run date: everything the monitor says that day.

Contract: :func:`run_monitor` takes the champion's reference profile, the
day's cohort (feature columns, town, district, worker_id, person_id) with its
calibrated p, and the rows of earlier published runs with their labels as
known on the day (NaN = unknown; the caller labels them with
:func:`models.monitoring.realised.served_labels`, the one label rule), and
returns a :class:`MonitorResult`: today's drift report and CBPE estimate, the
realised and expected figures of every run whose windows have closed
(:func:`models.monitoring.realised.closed`), the verdict and its sentences in
Chinese. :meth:`MonitorResult.headline` flattens the figures a time series
needs (MLflow metrics, Prometheus gauges, the service database);
:func:`log_headline` logs them as metrics on the champion version's MLflow
run, with the run date as the timestamp, so each version carries its own
history. Reading runs from and writing results to the service database is the
serving side's; this module knows no database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.monitoring.drift import drift_report
from models.monitoring.estimate import expected_quality
from models.monitoring.realised import SETTLE_DAYS, closed, realised_quality
from models.monitoring.verdict import ORDER, Thresholds, Verdict, closed_table, verdict
from models.monitoring.words import sentences_zh


@dataclass
class MonitorResult:
    outcome: str
    as_of: pd.Timestamp
    model_version: str | None
    drift: pd.DataFrame
    expected: pd.DataFrame
    closed: pd.DataFrame
    verdict: Verdict
    sentences: list[str] = field(default_factory=list)
    #: every realised figure of the closed runs (district, towns, groups)
    realised: pd.DataFrame = field(default_factory=pd.DataFrame)

    def headline(self) -> dict[str, float]:
        """District-wide figures of the day, as flat name -> value (NaN when unknown)."""
        d = self.drift[self.drift["scope"] == "district"] if len(self.drift) else self.drift
        used = d[d["kind"].isin(["numeric", "category"])] if len(d) else d
        if len(used) and "cumulative" in used.columns:
            used = used[~used["cumulative"].astype(bool)]
        score = d[d["kind"] == "score"] if len(d) else d
        exp = self.expected[self.expected["scope"] == "district"]
        out = {
            "verdict_level": float(ORDER[self.verdict.level]),
            "input_psi_max": float(used["psi"].max()) if len(used) else math.nan,
            "score_psi": float(score["psi"].iloc[0]) if len(score) else math.nan,
            "expected_precision_at_10pct": _first(exp, "precision_at_10pct"),
            "expected_roc_auc": _first(exp, "roc_auc"),
            "mean_p": _first(exp, "mean_p"),
        }
        done = self.closed[self.closed["scope"] == "district"] if len(self.closed) else self.closed
        if len(done):
            last = done.sort_values("as_of").iloc[-1]
            out |= {
                "realised_precision_at_10pct": float(last["precision_at_10pct_realised"]),
                "realised_minus_expected_precision_at_10pct": float(last["precision_at_10pct_gap"]),
                "realised_roc_auc": float(last["roc_auc_realised"]),
                "observed_over_expected": float(last["positives"] / last["expected_positives"])
                if last["expected_positives"] > 0
                else math.nan,
            }
        return out


def _first(frame: pd.DataFrame, column: str) -> float:
    return float(frame[column].iloc[0]) if len(frame) and column in frame.columns else math.nan


def run_monitor(
    reference: dict[str, Any],
    today: pd.DataFrame,
    p_today: np.ndarray,
    history: pd.DataFrame,
    labels: np.ndarray,
    *,
    outcome: str,
    as_of: pd.Timestamp,
    observed_until: pd.Timestamp,
    horizon_days: int,
    band_thresholds: tuple[float, ...] | None = None,
    thresholds: Thresholds | None = None,
    settle_days: int = SETTLE_DAYS,
    model_version: str | None = None,
) -> MonitorResult:
    """The day's drift, estimate, closed runs' quality, verdict and sentences."""
    top, per = reference.get("top_fraction", 0.10), reference.get("per_worker", 2)
    today = today.reset_index(drop=True)
    scored = today.assign(p=np.asarray(p_today, dtype=float), as_of=pd.Timestamp(as_of))
    drift = drift_report(reference, today, scored["p"].to_numpy(), thresholds=band_thresholds)
    expected = expected_quality(scored, top, per)
    history = history.reset_index(drop=True)
    labels = np.asarray(labels, dtype=float)
    dates = pd.to_datetime(history["as_of"]) if len(history) else pd.Series(dtype="datetime64[us]")
    shut = np.asarray(
        [closed(d, observed_until, horizon_days, settle_days) for d in dates], dtype=bool
    )
    if shut.any():
        rows, y = history[shut], labels[shut]
        realised = realised_quality(rows, y, top, per)
        done = closed_table(realised, expected_quality(rows, top, per))
    else:
        realised, done = pd.DataFrame(), pd.DataFrame()
    v = verdict(drift, expected, done, reference, thresholds)
    return MonitorResult(
        outcome,
        pd.Timestamp(as_of),
        model_version,
        drift,
        expected,
        done,
        v,
        sentences_zh(v, outcome),
        realised,
    )


def log_headline(client: Any, run_id: str, result: MonitorResult) -> None:
    """Log the day's headline figures on the version's MLflow run (``monitor.<name>``)."""
    stamp = int(pd.Timestamp(result.as_of).timestamp() * 1000)
    step = int(pd.Timestamp(result.as_of).toordinal())
    for name, value in result.headline().items():
        if value == value:
            client.log_metric(run_id, f"monitor.{name}", value, timestamp=stamp, step=step)
