"""The realised quality of the lists that were served, once their label windows have closed.

Contract:

* :func:`closed` says whether a run's windows have closed: ``as_of + horizon +
  settle_days <= observed_until``. ``settle_days`` (default 14) leaves time
  for late records: lab results arrive 1–5 days after the test, worker notes
  0–2 days (docs/simulator.md); a label counted before they arrive would miss
  positives.
* :func:`served_labels` gives each served row its label with
  :func:`features.build_labels` — the one label rule (docs/features.md: the
  outcome within the horizon or until the planned end if that comes first,
  exits competing, a window not fully observed unknown). There is no second
  label definition here.
* :func:`realised_quality` computes, for every run day, district-wide and per
  town: precision and recall of the lists actually served (top
  ``top_fraction`` of the district, top ``per_worker`` of each caseload;
  :mod:`models.monitoring.lists`), ROC AUC, PR AUC, Brier and ECE
  (:mod:`models.metrics`), observed / expected positives. Rows whose label is
  unknown are left out after the lists are cut (the lists are what people
  saw). :func:`calibration_by_band` and :func:`fairness_by_run` give the
  per-band calibration and the fairness table (:func:`models.fairness.fairness_table`,
  the training convention: groups of sex, age band, household, drug on the
  district list).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from features import build_labels
from features.config import LabelConfig
from models.fairness import fairness_table
from models.metrics import brier, ece, pr_auc, roc_auc
from models.monitoring.lists import scope_groups, served_lists
from models.panel import _age_band

SETTLE_DAYS = 14


def closed(
    as_of: pd.Timestamp,
    observed_until: pd.Timestamp,
    horizon_days: int,
    settle_days: int = SETTLE_DAYS,
) -> bool:
    """Whether a run's label windows have all closed (with time for late records)."""
    end = pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days + settle_days)
    return end <= pd.Timestamp(observed_until)


def served_labels(
    served: pd.DataFrame,
    *,
    persons: Any,
    events: Any,
    outcome: str,
    observed_until: pd.Timestamp | None = None,
    config: LabelConfig | None = None,
    horizon_days: int | None = None,
) -> np.ndarray:
    """The label of every served row (1.0, 0.0, NaN = unknown) by :func:`features.build_labels`."""
    entities = served[["person_id", "as_of"]].copy()
    entities["as_of"] = pd.to_datetime(entities["as_of"]).astype("datetime64[us]")
    unique = entities.drop_duplicates().reset_index(drop=True)
    got = build_labels(
        unique,
        persons=persons,
        events=events,
        outcome=outcome,  # type: ignore[arg-type]
        horizon_days=horizon_days,
        config=config,
        observed_until=observed_until,
    )
    got["y"] = got["label"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    merged = entities.merge(got[["person_id", "as_of", "y"]], on=["person_id", "as_of"], how="left")
    return merged["y"].to_numpy(dtype=float)


def _quality(
    y: np.ndarray, p: np.ndarray, top: np.ndarray, case: np.ndarray, pct: int, k: int
) -> dict[str, float]:
    known = ~np.isnan(y)
    yk, pk = y[known].astype(int), p[known]
    out: dict[str, float] = {
        "n": float(known.sum()),
        "unknown": float((~known).sum()),
        "positives": float(yk.sum()),
        "expected_positives": float(pk.sum()),
        "observed_over_expected": float(yk.sum() / pk.sum()) if pk.sum() > 0 else math.nan,
        "roc_auc": roc_auc(yk, pk) if len(yk) else math.nan,
        "pr_auc": pr_auc(yk, pk) if len(yk) else math.nan,
        "brier": brier(yk, pk) if len(yk) else math.nan,
        "ece": ece(yk, pk) if len(yk) else math.nan,
    }
    for name, sel in ((f"{pct}pct", top[known]), (f"{k}_per_worker", case[known])):
        hits, n_sel, n_pos = float(yk[sel].sum()), int(sel.sum()), float(yk.sum())
        out[f"selected_at_{name}"] = float(n_sel)
        out[f"precision_at_{name}"] = hits / n_sel if n_sel else math.nan
        out[f"recall_at_{name}"] = hits / n_pos if n_pos else math.nan
    return out


def realised_quality(
    served: pd.DataFrame, y: np.ndarray, top_fraction: float = 0.10, per_worker: int = 2
) -> pd.DataFrame:
    """Realised metrics per (as_of, scope, key): the district, each town and, when
    ``attr_*`` columns are present (:func:`audit_attributes`), each fairness group.

    ``served``: as_of, district, town, worker_id, person_id, p (and the served
    ranks when known); ``y``: the labels of :func:`served_labels`.
    """
    served = served.reset_index(drop=True)
    top, case = served_lists(served, top_fraction, per_worker)
    p, y = served["p"].to_numpy(dtype=float), np.asarray(y, dtype=float)
    pct = round(top_fraction * 100)
    rows = []
    for scope, _col, groups in scope_groups(served):
        for (as_of, key), idx in groups.items():
            rows.append(
                {
                    "as_of": as_of,
                    "scope": scope,
                    "key": str(key),
                    **_quality(y[idx], p[idx], top[idx], case[idx], pct, per_worker),
                }
            )
    return pd.DataFrame(rows)


def calibration_by_band(served: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """Per run day and band: rows, positives, mean p, observed rate, observed / expected."""
    frame = served[["as_of", "band", "p"]].assign(y=np.asarray(y, dtype=float))
    frame = frame[~np.isnan(frame["y"])]
    out = frame.groupby(["as_of", "band"]).agg(
        n=("y", "size"), positives=("y", "sum"), mean_p=("p", "mean"), observed_rate=("y", "mean")
    )
    out["observed_over_expected"] = out["observed_rate"] / out["mean_p"]
    return pd.DataFrame(out.reset_index())


def audit_attributes(
    served: pd.DataFrame, persons: pd.DataFrame, age_bands: tuple[int, ...] = (30, 40, 50)
) -> pd.DataFrame:
    """The fairness attributes of served rows (``attr_*``, as the training panel sets them)."""
    cols = persons[["person_id", "sex", "household", "primary_drug", "birth_year"]]
    out = served.merge(cols, on="person_id", how="left", validate="many_to_one")
    out = out.rename(
        columns={"sex": "attr_sex", "household": "attr_household", "primary_drug": "attr_drug"}
    )
    out["attr_household"] = out["attr_household"].astype("string").fillna("unknown")
    age = pd.to_datetime(out["as_of"]).dt.year - out["birth_year"]
    out["attr_age_band"] = _age_band(age, age_bands)
    return out


def fairness_by_run(
    served: pd.DataFrame,
    y: np.ndarray,
    attributes: tuple[str, ...] = ("sex", "age_band", "household", "drug"),
    top_fraction: float = 0.10,
    per_worker: int = 2,
    **bounds: Any,
) -> pd.DataFrame:
    """The fairness table per run day, on the district list as served (training convention)."""
    served = served.reset_index(drop=True)
    top, _ = served_lists(served, top_fraction, per_worker)
    frame = served.assign(y=np.asarray(y, dtype=float), prob=served["p"], selected=top)
    frame = frame[~np.isnan(frame["y"])]
    parts = []
    for as_of, rows in frame.groupby("as_of"):
        table = fairness_table(rows.assign(y=rows["y"].astype(int)), attributes, **bounds)
        parts.append(table.assign(as_of=as_of))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
