"""Fairness audit per fold (Aequitas style, issue 5).

Contract: :func:`fairness_table` takes one test period's rows — the label
``y``, the calibrated probability ``prob``, whether the row was ``selected``
(top of the daily district list at the team's capacity) and the attribute
columns ``attr_<name>`` — and returns one row per (attribute, group) with:
n, positives, prevalence, selected share, false-positive rate, false-negative
rate, precision at the capacity, and calibration (mean probability / observed
rate, 1 = calibrated). Disparities are ratios to the *largest* group of the
attribute (the reference, Aequitas' default); a group is flagged for a metric
when the ratio (or, for calibration, the group's own ratio) falls outside
``bounds`` (default [0.8, 1.25]) and the group is large enough to judge
(``min_group_size`` rows, ``min_group_positives`` positives for FNR and
calibration). :func:`flags` lists the flags as ``attribute=group:metric``.

Which attributes are model inputs is a policy, written down in
docs/models.md: sex is kept out of the inputs (``exclude_features``), age,
household registration and drug type are inputs; all four are audited.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("fpr", "fnr", "precision")


def _rates(y: np.ndarray, prob: np.ndarray, sel: np.ndarray) -> dict[str, float]:
    pos, neg = y == 1, y == 0
    n_pos, n_neg, n_sel = int(pos.sum()), int(neg.sum()), int(sel.sum())
    prevalence = n_pos / len(y) if len(y) else np.nan
    return {
        "n": float(len(y)),
        "positives": float(n_pos),
        "prevalence": prevalence,
        "selected_share": n_sel / len(y) if len(y) else np.nan,
        "fpr": float((sel & neg).sum() / n_neg) if n_neg else np.nan,
        "fnr": float((~sel & pos).sum() / n_pos) if n_pos else np.nan,
        "precision": float((sel & pos).sum() / n_sel) if n_sel else np.nan,
        "calibration": float(prob.mean() / prevalence) if n_pos else np.nan,
    }


def fairness_table(
    rows: pd.DataFrame,
    attributes: tuple[str, ...],
    bounds: tuple[float, float] = (0.8, 1.25),
    min_group_size: int = 50,
    min_group_positives: int = 20,
) -> pd.DataFrame:
    """Per-group rates, disparities against the largest group, and flags."""
    lo, hi = bounds
    out = []
    y = rows["y"].to_numpy(dtype=int)
    prob = rows["prob"].to_numpy(dtype=float)
    sel = rows["selected"].to_numpy(dtype=bool)
    for attr in attributes:
        groups = rows[f"attr_{attr}"].astype(str).to_numpy()
        names, counts = np.unique(groups, return_counts=True)
        reference = names[np.argmax(counts)]
        stats = {g: _rates(y[groups == g], prob[groups == g], sel[groups == g]) for g in names}
        ref = stats[reference]
        for g in names:
            s = stats[g]
            row: dict[str, object] = {"attribute": attr, "group": g, **s}
            row["reference"] = g == reference
            big = s["n"] >= min_group_size
            enough_pos = s["positives"] >= min_group_positives
            flagged = []
            for m in METRICS:
                ratio = s[m] / ref[m] if ref[m] and not np.isnan(ref[m]) else np.nan
                row[f"{m}_disparity"] = ratio
                judge = big and (enough_pos or m == "fpr") and g != reference
                if judge and not np.isnan(ratio) and not lo <= ratio <= hi:
                    flagged.append(m)
            cal = s["calibration"]
            if big and enough_pos and not np.isnan(cal) and not lo <= cal <= hi:
                flagged.append("calibration")
            row["flags"] = ",".join(flagged)
            out.append(row)
    return pd.DataFrame(out)


def flags(table: pd.DataFrame) -> set[str]:
    """Every flag of a table as ``attribute=group:metric``."""
    return {
        f"{r.attribute}={r.group}:{m}"
        for r in table.itertuples(index=False)
        for m in str(r.flags).split(",")
        if m
    }
