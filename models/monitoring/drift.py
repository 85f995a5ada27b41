"""Input, score and band drift of one day's cohort against the reference profile.

Contract: :func:`drift_report` takes a reference (:mod:`models.monitoring.reference`),
today's cohort rows (the model's feature columns, ``town``) and today's
calibrated probabilities, and returns one frame with a row per (scope, key,
item): scope ``district`` (key ``all``) and ``town`` (towns the reference
profiles), item a feature, a one-hot group, ``score`` or ``band``.

Statistics, on the reference's bins (quantile edges; a missing bin for NaN):

* **PSI** (population stability index) = sum over bins of
  (now - ref) * ln(now / ref), shares floored at :data:`EPS` so an empty bin
  does not give infinity (the usual convention);
* **Jensen–Shannon distance** (base 2, in [0, 1]) from
  :func:`scipy.spatial.distance.jensenshannon`: bounded and symmetric, so
  comparable across features;
* **noise p-value**: Pearson's chi-square test of homogeneity of the two
  histograms (:func:`scipy.stats.chi2_contingency`): whether the difference
  is larger than sampling noise alone would make it (a town of 300 people
  has PSI ~0.03 from noise alone; with a few dozen, PSI is noise); the verdict
  uses it with a Bonferroni correction and judges towns only from
  ``min_town_rows`` people;
* missing share now vs ref (NaN share, or the share of ``<feature>_imp``
  flags, or the ``unknown``/``none`` category), and for one-hot groups the
  category whose share moved most;
* ``cumulative``: the feature is a total since records began (the catalog's
  ``all`` window); its distribution grows with the length of the records by
  construction, so the verdict lists its drift without acting on it;
* for the score: PSI and JS on the score bins, mean p; for the bands: the
  share of each band now and in the reference (bands from the reference's
  survival grid, thresholds given by the caller — serving's ``bands``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from features.catalog import load_catalog
from models.monitoring.reference import GRID, NONE, bin_counts, category_counts

EPS = 1e-4


def shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else counts


def psi(ref_counts: np.ndarray, now_counts: np.ndarray, eps: float = EPS) -> float:
    """Population stability index of two histograms on the same bins."""
    r, a = shares(ref_counts), shares(now_counts)
    if not r.sum() or not a.sum():
        return math.nan
    r, a = np.maximum(r, eps), np.maximum(a, eps)
    return float(np.sum((a - r) * np.log(a / r)))


def js_distance(ref_counts: np.ndarray, now_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) of two histograms on the same bins."""
    r, a = np.asarray(ref_counts, dtype=float), np.asarray(now_counts, dtype=float)
    if not r.sum() or not a.sum():
        return math.nan
    return float(jensenshannon(r, a, base=2))


def psi_p_value(ref_counts: np.ndarray, now_counts: np.ndarray) -> float:
    """Chance of histograms at least this different from sampling noise alone.

    Pearson's chi-square test of homogeneity on the 2 x bins table (empty bins
    dropped; :func:`scipy.stats.chi2_contingency`).
    """
    r, a = np.asarray(ref_counts, dtype=float), np.asarray(now_counts, dtype=float)
    used = (r + a) > 0
    if r.sum() <= 0 or a.sum() <= 0 or used.sum() < 2:
        return math.nan
    return float(chi2_contingency(np.vstack([r[used], a[used]]), correction=False).pvalue)


def _compare(ref: list[int] | np.ndarray, now: list[int] | np.ndarray) -> dict[str, float]:
    value = psi(np.asarray(ref), np.asarray(now))
    return {
        "psi": value,
        "js": js_distance(np.asarray(ref), np.asarray(now)),
        "p_value": psi_p_value(np.asarray(ref), np.asarray(now)),
        "n_ref": float(np.sum(ref)),
        "n_now": float(np.sum(now)),
    }


def band_shares(survival: list[float] | np.ndarray, thresholds: tuple[float, ...]) -> list[float]:
    """Share of each band from a survival grid (share with p >= t) and the band thresholds."""
    s = np.asarray(survival, dtype=float)
    if any(abs(GRID[int(round(t * 1000))] - t) > 1e-9 for t in thresholds):
        raise ValueError(f"band thresholds must lie on the 0.001 grid, got {thresholds}")
    at = [1.0] + [float(s[int(round(t * 1000))]) for t in thresholds] + [0.0]
    return [at[i] - at[i + 1] for i in range(len(thresholds) + 1)]


def _scope_rows(
    reference: dict[str, Any],
    profile: dict[str, Any],
    frame: pd.DataFrame,
    prob: np.ndarray,
    thresholds: tuple[float, ...] | None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    importance = reference.get("importance", {})
    for name, ref in profile["features"].items():
        edges = reference["edges"][name]
        counts, missing = bin_counts(frame[name].to_numpy(dtype=float), edges)
        n_ref, n_now = sum(ref["counts"]) + ref["missing"], sum(counts) + missing
        rows.append(
            {
                "item": name,
                "kind": "numeric",
                "importance": importance.get(name, 0.0),
                **_compare([*ref["counts"], ref["missing"]], [*counts, missing]),
                "missing_ref": ref["missing"] / n_ref if n_ref else math.nan,
                "missing_now": missing / n_now if n_now else math.nan,
            }
        )
    for spec, ref in profile["categories"].items():
        columns = reference["category_columns"][spec]
        now = category_counts(frame, columns)
        names = sorted(set(ref["counts"]) | set(now))
        r = np.asarray([ref["counts"].get(c, 0) for c in names], dtype=float)
        a = np.asarray([now.get(c, 0) for c in names], dtype=float)
        change = shares(a) - shares(r)
        top = int(np.argmax(np.abs(change)))
        unknown = [i for i, c in enumerate(names) if c in (NONE, "unknown", "none")]
        rows.append(
            {
                "item": spec,
                "kind": "category",
                "importance": sum(importance.get(c, 0.0) for c in columns),
                **_compare(r, a),
                "missing_ref": float(shares(r)[unknown].sum()) if unknown else 0.0,
                "missing_now": float(shares(a)[unknown].sum()) if unknown else 0.0,
                "category": names[top],
                "category_ref": float(shares(r)[top]),
                "category_now": float(shares(a)[top]),
            }
        )
    for spec, ref in profile["flags"].items():
        col = reference["flag_columns"][spec]
        now_share = float(np.nanmean(frame[col].to_numpy(dtype=float))) if len(frame) else math.nan
        rows.append(
            {
                "item": col,
                "kind": "missing",
                "importance": importance.get(col, 0.0),
                "missing_ref": ref["share"],
                "missing_now": now_share,
            }
        )
    score_counts, _ = bin_counts(prob, reference["score_edges"])
    rows.append(
        {
            "item": "score",
            "kind": "score",
            "importance": 1.0,
            **_compare(profile["score"]["counts"], score_counts),
            "mean_ref": float(_mean_from_survival(profile["score"]["survival"])),
            "mean_now": float(np.mean(prob)) if len(prob) else math.nan,
        }
    )
    if thresholds is not None and len(prob):
        ref_b = band_shares(profile["score"]["survival"], thresholds)
        now_b = np.bincount(
            np.searchsorted(np.asarray(thresholds), prob, side="right"),
            minlength=len(thresholds) + 1,
        ) / len(prob)
        band_row: dict[str, Any] = {
            "item": "band",
            "kind": "band",
            "importance": 1.0,
            **_compare(np.asarray(ref_b) * profile["rows"], now_b * len(prob)),
        }
        for b, (r_share, a_share) in enumerate(zip(ref_b, now_b, strict=True), start=1):
            band_row[f"band{b}_ref"], band_row[f"band{b}_now"] = r_share, float(a_share)
        rows.append(band_row)
    return rows


def _mean_from_survival(survival: list[float]) -> float:
    """Mean p from the survival grid (integral of P(p >= t) dt, to the grid's step)."""
    s = np.asarray(survival, dtype=float)
    return float(s[1:].sum() / 1000)


def drift_report(
    reference: dict[str, Any],
    frame: pd.DataFrame,
    prob: np.ndarray,
    *,
    thresholds: tuple[float, ...] | None = None,
    towns: bool = True,
) -> pd.DataFrame:
    """Drift of today's cohort against the reference, district-wide and per profiled town."""
    frame = frame.reset_index(drop=True)
    prob = np.asarray(prob, dtype=float)
    out = [
        {"scope": "district", "key": "all", **row}
        for row in _scope_rows(reference, reference["district"], frame, prob, thresholds)
    ]
    if towns and "town" in frame.columns:
        for town, idx in frame.groupby("town", observed=True).indices.items():
            profile = reference["towns"].get(str(town))
            if profile is None:
                continue
            rows = _scope_rows(reference, profile, frame.iloc[idx], prob[idx], thresholds)
            out += [{"scope": "town", "key": str(town), **row} for row in rows]
    report = pd.DataFrame(out)
    report["missing_change"] = report["missing_now"] - report["missing_ref"]
    totals = {f.name for f in load_catalog().features() if f.window == "all"}
    report["cumulative"] = report["item"].isin(totals)
    return report
