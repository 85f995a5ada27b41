"""The reference profile: what the model was trained on, as aggregates (no person rows).

Contract: :func:`build_reference` takes the reference rows (the newest cohort
the model knows: the production fold's validation dates — where Platt was
fitted — and every later panel date up to the data cutoff; see
:func:`reference_dates`), the model's feature names, its calibrated
probabilities on those rows and, where known, their labels, and returns a
JSON-ready dict:

* per numeric feature: inner bin edges (the ``bins``-quantiles of the
  reference, de-duplicated, so a count feature gets one bin per value),
  counts per bin, missing (NaN) count, and the feature's share of the model's
  split gain (``importance``);
* per categorical feature (the catalog's one-hot groups,
  ``person_category``/``last_category``): counts per category (``(none)`` when
  no column is set), and the group's importance;
* per imputed-value flag (``<feature>_imp``): the share of rows imputed;
* the score: quantile edges and counts of the calibrated p, and the share of
  rows with p >= t on a 0.001 grid (``survival``), from which the share of
  any band with thresholds on that grid is exact;
* the same counts per town with at least ``min_town_rows`` rows, so a town is
  compared with itself and not with the district's mix;
* ``expected``: the CBPE figures on the reference dates (mean over dates),
  and ``realised``: the metrics of :mod:`models.metrics` on the labelled
  reference rows (the validation dates).

Only counts, edges, shares and metrics are stored: no person_id, no row. The
profile is logged with the model version as the MLflow artifact
:data:`ARTIFACT` (:func:`log_reference`) and read back by
:func:`load_reference`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.catalog import load_catalog
from models.metrics import evaluate
from models.monitoring.estimate import expected_quality

SCHEMA = "monitoring-reference-1"
ARTIFACT = "monitoring/reference.json"
BINS = 10
#: probability grid of ``survival`` (share of rows with p >= t)
GRID = np.round(np.arange(0, 1001) / 1000, 3)
CATEGORY_KINDS = frozenset({"person_category", "last_category"})
NONE = "(none)"


def feature_groups(names: list[str]) -> dict[str, Any]:
    """Split model columns into numeric features, one-hot groups and imputed-value flags."""
    catalog = {f.name: f for f in load_catalog().features()}
    numeric: list[str] = []
    categories: dict[str, dict[str, str]] = {}
    flags: dict[str, str] = {}
    for name in names:
        feat = catalog.get(name)
        if feat is not None and feat.kind in CATEGORY_KINDS:
            categories.setdefault(feat.spec, {})[name] = name[len(feat.spec) + 1 :]
        elif feat is not None and name == f"{feat.spec}_imp" and name != feat.spec:
            flags[feat.spec] = name
        else:
            numeric.append(name)
    return {"numeric": numeric, "categories": categories, "flags": flags}


def quantile_edges(values: np.ndarray, bins: int = BINS) -> list[float]:
    """Inner edges: the ``bins``-quantiles of the non-missing values, de-duplicated."""
    x = values[~np.isnan(values)]
    if not len(x):
        return []
    qs = np.quantile(x, np.arange(1, bins) / bins, method="lower")
    return sorted({float(q) for q in qs})


def bin_counts(values: np.ndarray, edges: list[float]) -> tuple[list[int], int]:
    """Counts per bin (x <= e1, e1 < x <= e2, ..., x > e_last) and the NaN count."""
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    idx = np.searchsorted(np.asarray(edges, dtype=float), values[~missing], side="left")
    return np.bincount(idx, minlength=len(edges) + 1).astype(int).tolist(), int(missing.sum())


def category_of(frame: pd.DataFrame, columns: dict[str, str]) -> np.ndarray:
    """The category of each row of a one-hot group (``(none)`` when no column is set)."""
    cols = list(columns)
    onehot = frame[cols].to_numpy(dtype=float)
    names = np.asarray([columns[c] for c in cols] + [NONE], dtype=object)
    hot = np.nan_to_num(onehot) > 0.5
    idx = np.where(hot.any(axis=1), hot.argmax(axis=1), len(cols))
    return names[idx]


def category_counts(frame: pd.DataFrame, columns: dict[str, str]) -> dict[str, int]:
    values, counts = np.unique(category_of(frame, columns), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}


def survival(prob: np.ndarray) -> list[float]:
    """Share of rows with p >= t for every t of :data:`GRID`."""
    p = np.sort(np.asarray(prob, dtype=float))
    if not len(p):
        return [math.nan] * len(GRID)
    below = np.searchsorted(p, GRID, side="left")
    return [float(v) for v in ((len(p) - below) / len(p)).round(6)]


def _profile(
    frame: pd.DataFrame,
    groups: dict[str, Any],
    edges: dict[str, list[float]],
    prob: np.ndarray,
    score_edges: list[float],
) -> dict[str, Any]:
    features = {}
    for name in groups["numeric"]:
        counts, missing = bin_counts(frame[name].to_numpy(dtype=float), edges[name])
        features[name] = {"counts": counts, "missing": missing}
    categories = {
        spec: {"counts": category_counts(frame, cols)}
        for spec, cols in groups["categories"].items()
    }
    flags = {
        spec: {"share": float(np.nanmean(frame[col].to_numpy(dtype=float))) if len(frame) else 0.0}
        for spec, col in groups["flags"].items()
    }
    score_counts, _ = bin_counts(prob, score_edges)
    return {
        "rows": len(frame),
        "features": features,
        "categories": categories,
        "flags": flags,
        "score": {"counts": score_counts, "survival": survival(prob)},
    }


def gain_shares(booster: Any, names: list[str]) -> dict[str, float]:
    """Each column's share of the model's total split gain (LightGBM ``importance_type=gain``)."""
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
    total = gain.sum()
    return {n: float(g / total) if total > 0 else 0.0 for n, g in zip(names, gain, strict=True)}


def build_reference(
    frame: pd.DataFrame,
    feature_names: list[str],
    prob: np.ndarray,
    *,
    outcome: str,
    labels: np.ndarray | None = None,
    importance: dict[str, float] | None = None,
    bins: int = BINS,
    min_town_rows: int = 100,
    top_fraction: float = 0.10,
    per_worker: int = 2,
    model_version: str | None = None,
) -> dict[str, Any]:
    """The reference profile of ``frame`` (rows: as_of, town, worker_id, person_id, features)."""
    frame = frame.reset_index(drop=True)
    prob = np.asarray(prob, dtype=float)
    groups = feature_groups(feature_names)
    edges = {n: quantile_edges(frame[n].to_numpy(dtype=float), bins) for n in groups["numeric"]}
    score_edges = quantile_edges(prob, bins)
    share = importance or {}
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "outcome": outcome,
        "model_version": model_version,
        "dates": sorted(str(pd.Timestamp(d).date()) for d in frame["as_of"].unique()),
        "bins": bins,
        "top_fraction": top_fraction,
        "per_worker": per_worker,
        "edges": edges,
        "score_edges": score_edges,
        "importance": {n: round(share.get(n, 0.0), 6) for n in feature_names},
        "category_columns": groups["categories"],
        "flag_columns": groups["flags"],
        "district": _profile(frame, groups, edges, prob, score_edges),
        "towns": {},
    }
    if "town" in frame.columns:
        for town, idx in frame.groupby("town", observed=True).indices.items():
            if len(idx) >= min_town_rows:
                sub = frame.iloc[idx]
                out["towns"][str(town)] = _profile(sub, groups, edges, prob[idx], score_edges)
    scored = frame.assign(p=prob)
    if "district" not in scored.columns:
        scored["district"] = "all"
    if "town" not in scored.columns:
        scored["town"] = "all"
    exp = expected_quality(scored, top_fraction, per_worker)
    district = exp[exp["scope"] == "district"].drop(columns=["as_of", "scope", "key"])
    out["expected"] = {k: float(v) for k, v in district.mean().items()}
    out["realised"] = {}
    if labels is not None:
        y = np.asarray(labels, dtype=float)
        known = ~np.isnan(y)
        if known.any() and 0 < y[known].sum() < known.sum():
            out["realised"] = evaluate(
                y[known].astype(int),
                prob[known],
                frame["as_of"].to_numpy()[known],
                frame["worker_id"].astype(str).to_numpy()[known],
                top_fraction=top_fraction,
                per_worker=per_worker,
            )
    return out


def reference_dates(
    dates: list[pd.Timestamp], valid: tuple[pd.Timestamp, ...]
) -> list[pd.Timestamp]:
    """The production fold's validation dates and every later panel date."""
    first = min(valid) if valid else max(dates)
    return [d for d in dates if d >= first]


def reference_from_panel(
    panel: Any,
    outcome: str,
    predictor: Any,
    fold: Any,
    persons: pd.DataFrame | None = None,
    *,
    top_fraction: float = 0.10,
    per_worker: int = 2,
) -> dict[str, Any]:
    """The reference of a trained production model (:func:`models.train.fit_production`).

    ``panel`` is the training :class:`models.panel.Panel`; ``persons`` (optional)
    adds each row's town and district when the panel does not carry them.
    """
    dates = reference_dates(panel.dates, fold.valid)
    rows = panel.frame[panel.frame["as_of"].isin(dates)].reset_index(drop=True)
    if persons is not None and "town" not in rows.columns:
        places = persons[["person_id", "district", "town"]]
        rows = rows.merge(places, on="person_id", how="left", validate="many_to_one")
    X = rows[predictor.feature_names].to_numpy(dtype=np.float64)
    return build_reference(
        rows,
        predictor.feature_names,
        predictor.predict(X),
        outcome=outcome,
        labels=rows[f"label_{outcome}"].astype("Float64").to_numpy(dtype=float, na_value=np.nan),
        importance=gain_shares(predictor.booster, predictor.feature_names),
        top_fraction=top_fraction,
        per_worker=per_worker,
    )


def log_reference(client: Any, run_id: str, reference: dict[str, Any]) -> None:
    """Store the profile with the model version's run (:data:`ARTIFACT`)."""
    client.log_dict(run_id, reference, ARTIFACT)


def load_reference(client: Any, run_id: str) -> dict[str, Any]:
    """The profile logged with a run."""
    import mlflow

    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=ARTIFACT, tracking_uri=client.tracking_uri
    )
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def reference_for_version(client: Any, outcome: str, version: str) -> dict[str, Any]:
    """The profile logged with a registered version of ``outcome``'s model.

    Raises LookupError with one sentence when the version has none (trained
    before monitoring existed: retrain it, or monitor without drift).
    """
    from mlflow.exceptions import MlflowException

    from models.registry import model_name

    mv = client.get_model_version(model_name(outcome), str(version))
    try:
        return load_reference(client, str(mv.run_id))
    except (MlflowException, OSError) as exc:
        raise LookupError(
            f"version {version} of the {outcome} model has no monitoring reference "
            f"({ARTIFACT}); it was trained before monitoring existed: retrain it"
        ) from exc
