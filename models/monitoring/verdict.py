"""The monitor's verdict: ok / watch / retrain recommended, with the evidence.

Contract: :func:`verdict` takes today's drift report
(:func:`models.monitoring.drift.drift_report`), today's expected quality
(:func:`models.monitoring.estimate.expected_quality`), the realised quality of
the runs whose windows have closed with their estimates
(:func:`models.monitoring.estimate.estimate_gap`) and the reference profile,
and returns a :class:`Verdict`: the level and every piece of evidence that
crossed a threshold (``info`` items are listed but never raise the level).

The thresholds (:class:`Thresholds`) and why:

* **Input drift alone never recommends retraining.** Inputs can move without
  the ranking getting worse, and a retrain needs labels anyway; drift says
  *look* (``watch``). It counts when a feature the model uses (at least
  ``min_importance`` of its split gain) has PSI >= ``psi_major`` (0.25, the
  credit-scoring convention for a major population shift; 0.10–0.25 is
  listed as ``info``) and the shift is larger than sampling noise
  (chi-square test, ``alpha`` = 0.01 with a Bonferroni correction over every
  item of the day's report, district and towns: one decision per day).
* **Totals since records began** (the catalog's ``all`` window, e.g. all
  attended check-ins) are listed as ``info`` only: their distribution grows
  with the length of the records every day by construction (a district whose
  records start in 2023 has larger totals in 2025), so their drift says how
  old the records are, not that the world changed; what they do to the model
  shows in the score drift and the realised quality. (Added after the first
  run of ``research/monitoring_shifts.py``: see docs/models.md "Monitoring".)
* **Missing values**: a used feature's missing (imputed) share moving by
  ``missing_change`` (0.10) or more is ``watch``: usually a feed that
  stopped, not a changed population.
* **Score drift**: PSI of the probabilities >= ``psi_watch`` (0.10) and beyond
  noise is ``watch``: the bands and lists are filling differently.
* **Expected quality (CBPE, before labels)**: expected precision@10% below
  the reference's by more than ``precision_drop`` (0.05) is ``watch``: the
  lists are expected to find fewer people who will have the outcome (a
  changed cohort); it assumes calibration holds, so it cannot prove a drop.
* **Realised quality (labels in)**, on the latest closed run: the gap
  realised - expected precision@10% below -``gap`` (0.05, the issue's
  tolerance for the estimate) and beyond ``z_watch`` (3) binomial standard
  errors; observed / expected positives outside ``calibration`` ([0.8, 1.25],
  the fairness audit's bounds: the bands are absolute thresholds on p, so a
  25 % calibration error moves people across bands) and beyond ``z_watch``
  Poisson errors; realised ROC AUC below the model's own on its validation
  dates (the reference's ``realised``) by more than ``auc_drop`` (0.05) and
  beyond ``z_watch`` Hanley–McNeil errors. That is ``watch``: 3 standard
  errors happen by chance about once in 400 per figure, so 12 monthly runs
  of 3 figures stay quiet ~9 times in 10 (2 errors would alarm in most
  years). When the run before showed the same signal beyond ``z`` (2) as
  well (``consecutive`` = 2 closed runs), it is **retrain recommended**:
  one run can be bad luck, two in a row at these margins rarely are.
* Towns are judged by the same rules with at least ``min_town_rows`` (100)
  people today for drift, and ``min_town_positives`` (20) positives and
  ``min_town_selected`` (20) listed people for realised quality, and can raise
  at most ``watch``: the model is district-wide, and a town's problem (a
  worker gone) is a staffing question before it is a model question.
* The fairness audit's groups (scope ``group``: sex, age band, household,
  drug; :func:`models.monitoring.lists.scope_groups`) are judged on realised
  quality with the towns' minimum sizes, and *can* recommend retraining: a kind
  of person the model misjudges twice in a row (e.g. users of a new drug whose
  outcomes the probabilities understate) is what a retrain on newer outcomes
  fixes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

Level = Literal["ok", "watch", "retrain"]
ORDER = {"info": 0, "ok": 0, "watch": 1, "retrain": 2}
WORDS = {"ok": "ok", "watch": "watch", "retrain": "retrain recommended"}


@dataclass(frozen=True)
class Thresholds:
    psi_watch: float = 0.10
    psi_major: float = 0.25
    min_importance: float = 0.01
    alpha: float = 0.01
    missing_change: float = 0.10
    precision_drop: float = 0.05
    gap: float = 0.05
    calibration: tuple[float, float] = (0.8, 1.25)
    auc_drop: float = 0.05
    z_watch: float = 3.0
    z: float = 2.0
    consecutive: int = 2
    min_town_positives: int = 20
    min_town_selected: int = 20
    min_town_rows: int = 100


@dataclass
class Verdict:
    level: Level
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def words(self) -> str:
        return WORDS[self.level]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.evidence)


def _item(
    level: str,
    scope: Any,
    key: Any,
    what: str,
    value: Any,
    limit: float | str,
    reason: str,
    as_of: Any = None,
) -> dict[str, Any]:
    return {
        "level": level,
        "scope": str(scope),
        "key": str(key),
        "what": what,
        "value": float(value),
        "threshold": limit,
        "reason": reason,
        "as_of": as_of,
    }


def drift_evidence(report: pd.DataFrame, t: Thresholds) -> list[dict[str, Any]]:
    """Evidence from today's drift report."""
    out: list[dict[str, Any]] = []
    if report.empty:
        return out
    judged = (report["scope"] == "district") | (report["n_now"] >= t.min_town_rows)
    cut = t.alpha / max(int((judged & report["psi"].notna()).sum()), 1)
    for (scope, key), rows in report[judged].groupby(["scope", "key"], sort=False):
        r: Any
        for r in rows.itertuples(index=False):
            psi, p_value = getattr(r, "psi", math.nan), getattr(r, "p_value", math.nan)
            real = not (isinstance(p_value, float) and math.isnan(p_value)) and p_value < cut
            used = r.importance >= t.min_importance
            total = bool(getattr(r, "cumulative", False))
            if r.kind in ("numeric", "category") and psi == psi:
                if used and psi >= t.psi_major and real and not total:
                    out.append(
                        _item(
                            "watch",
                            scope,
                            key,
                            f"PSI {r.item}",
                            psi,
                            t.psi_major,
                            "major shift in an input the model uses",
                        )
                    )
                elif psi >= t.psi_watch and real:
                    out.append(
                        _item("info", scope, key, f"PSI {r.item}", psi, t.psi_watch, "input shift")
                    )
            if r.kind == "score" and psi == psi and psi >= t.psi_watch and real:
                out.append(
                    _item(
                        "watch",
                        scope,
                        key,
                        "PSI score",
                        psi,
                        t.psi_watch,
                        "the probabilities are distributed differently",
                    )
                )
            change = getattr(r, "missing_change", math.nan)
            if used and change == change and abs(change) >= t.missing_change:
                out.append(
                    _item(
                        "watch",
                        scope,
                        key,
                        f"missing share {r.item}",
                        change,
                        t.missing_change,
                        "a feed may have stopped or changed",
                    )
                )
    return out


def expected_evidence(
    expected: pd.DataFrame, reference: dict[str, Any], t: Thresholds
) -> list[dict[str, Any]]:
    """Evidence from today's CBPE estimate against the reference's."""
    ref = reference.get("expected", {}).get("precision_at_10pct")
    rows = expected[expected["scope"] == "district"]
    out: list[dict[str, Any]] = []
    if ref is None or rows.empty:
        return out
    for r in rows.itertuples(index=False):
        drop = ref - r.precision_at_10pct
        if drop > t.precision_drop:
            out.append(
                _item(
                    "watch",
                    "district",
                    r.key,
                    "expected precision@10%",
                    r.precision_at_10pct,
                    ref - t.precision_drop,
                    "the lists are expected to find fewer people with the outcome",
                    r.as_of,
                )
            )
    return out


def _auc_se(auc: float, n1: float, n0: float) -> float:
    """Hanley & McNeil (1982) standard error of an AUC."""
    if n1 < 1 or n0 < 1 or auc != auc:
        return math.nan
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    return math.sqrt(max(var, 0.0))


def _signals(
    r: Any, t: Thresholds, z: float, ref_auc: float | None
) -> dict[str, tuple[float, float | str, str]]:
    """The realised signals of one closed run in one scope at ``z`` standard errors."""
    out: dict[str, tuple[float, float | str, str]] = {}
    gap = r.precision_at_10pct_realised - r.precision_at_10pct_expected
    k = r.selected_at_10pct
    p = r.precision_at_10pct_expected
    se = math.sqrt(p * (1 - p) / k) if k and p == p else math.nan
    if gap == gap and gap < -t.gap and se == se and -gap > z * se:
        out["precision@10% realised - expected"] = (
            gap,
            -t.gap,
            "the lists found fewer people with the outcome than the probabilities said",
        )
    expected = r.expected_positives
    ratio = r.positives / expected if expected > 0 else math.nan
    lo, hi = t.calibration
    off = abs(r.positives - expected) > z * math.sqrt(expected) if expected > 0 else False
    if ratio == ratio and not lo <= ratio <= hi and off:
        out["observed / expected positives"] = (
            ratio,
            f"[{lo}, {hi}]",
            "the probabilities no longer match the outcomes (bands shift)",
        )
    if ref_auc is not None and ref_auc == ref_auc:
        drop = r.roc_auc_realised - ref_auc
        se_auc = _auc_se(r.roc_auc_realised, r.positives, r.n - r.positives)
        if drop == drop and drop < -t.auc_drop and se_auc == se_auc and -drop > z * se_auc:
            out["ROC AUC realised - at training"] = (
                drop,
                -t.auc_drop,
                "the ranking separates worse than on the model's own validation dates",
            )
    return out


def realised_evidence(
    closed: pd.DataFrame, t: Thresholds, reference: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Evidence from closed runs (:func:`closed_table`: one row per (as_of, scope, key))."""
    out: list[dict[str, Any]] = []
    if closed.empty:
        return out
    ref_auc = (reference or {}).get("realised", {}).get("roc_auc")
    for (scope, key), rows in closed.sort_values("as_of").groupby(["scope", "key"], sort=False):
        if scope != "district":
            rows = rows[
                (rows["positives"] >= t.min_town_positives)
                & (rows["selected_at_10pct"] >= t.min_town_selected)
            ]
        if rows.empty:
            continue
        runs = list(rows.itertuples(index=False))
        auc = ref_auc if scope == "district" else None
        latest = _signals(runs[-1], t, t.z_watch, auc)
        before = [_signals(r, t, t.z, auc) for r in runs[-t.consecutive : -1]]
        every = len(before) == t.consecutive - 1
        for what, (value, limit, reason) in latest.items():
            again = every and all(what in b for b in before)
            level = "retrain" if again and scope != "town" else "watch"
            note = f" (also on the {t.consecutive - 1} closed run(s) before)" if again else ""
            out.append(_item(level, scope, key, what, value, limit, reason + note, runs[-1].as_of))
    return out


def verdict(
    drift: pd.DataFrame,
    expected_today: pd.DataFrame,
    closed: pd.DataFrame,
    reference: dict[str, Any],
    thresholds: Thresholds | None = None,
) -> Verdict:
    """The level (the highest evidence) and the evidence, highest first."""
    t = thresholds or Thresholds()
    evidence = drift_evidence(drift, t)
    evidence += expected_evidence(expected_today, reference, t)
    evidence += realised_evidence(closed, t, reference)
    evidence.sort(key=lambda e: (-ORDER[e["level"]], e["scope"] != "district", e["what"]))
    top = max((ORDER[e["level"]] for e in evidence), default=0)
    levels: tuple[Level, Level, Level] = ("ok", "watch", "retrain")
    level = levels[top]
    return Verdict(level, evidence)


def closed_table(realised: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """Realised and expected figures of the same runs side by side (what the verdict reads)."""
    keys = ["as_of", "scope", "key"]
    counts = ["n", "positives", "expected_positives", "selected_at_10pct"]
    metrics = ["precision_at_10pct", "roc_auc"]
    joined = realised[keys + counts + metrics].merge(
        expected[keys + metrics], on=keys, suffixes=("_realised", "_expected")
    )
    joined["precision_at_10pct_gap"] = (
        joined["precision_at_10pct_realised"] - joined["precision_at_10pct_expected"]
    )
    return joined.sort_values(keys).reset_index(drop=True)
