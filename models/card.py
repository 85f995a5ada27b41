"""Model card: Markdown + HTML with figures, built from a training result's aggregates.

Contract: :func:`write_card` writes ``model_card.md``, ``model_card.html`` and
the figures (``calibration.png``, ``precision_at_k.png``, ``shap_summary.png``)
into a folder, from :func:`models.registry.evaluation_record` plus a SHAP
summary of the production model on the latest test rows (an image; no
person-level rows are written). The plotting helpers are reused by the
evaluation notebook. Chinese titles need a CJK font (Noto Sans CJK); without
one the figures fall back to English-only text.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

LABELS = {"relapse": ("复吸", "relapse"), "loss_of_contact": ("脱管失控", "loss of contact")}
MODEL_ROWS = ("lightgbm", "logistic", "rule", "oracle")
CARD_METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "precision_at_10pct",
    "recall_at_10pct",
    "precision_at_2_per_worker",
    "recall_at_2_per_worker",
)
FAIRNESS_COLS = (
    "attribute",
    "group",
    "n",
    "positives",
    "prevalence",
    "fpr",
    "fnr",
    "precision",
    "calibration",
    "fpr_disparity",
    "fnr_disparity",
    "precision_disparity",
    "flags",
)

INTENDED_USE = """\
**Intended use.** Rank the people of a social worker's caseload (and a town's
list) each morning by the estimated probability of the outcome within the next
90 days, so that home visits, extra tests, counselling and referrals go first
to those most at risk; show the reasons (drivers) and suggested plan items.

**Not for.** Any decision about a person's legal status, custody, sanctions or
eligibility; use outside community detox/rehabilitation; a population other
than the one trained on without re-evaluation. A score is a prompt for a
worker's attention, never evidence.

**Limits.** Trained on records, not on behaviour: what is not recorded (a
missed visit that was never logged) is invisible. Labels are recorded outcomes
(a positive or refused test, a recorded loss of contact): people tested less
often look safer than they are. Probabilities are calibrated on a recent
period and drift as practice changes; the retraining job checks this.
Fairness flags below are disparities to review, not proof of harm or of its
absence; small groups are reported but not flagged.
"""


@cache
def cjk_font() -> str | None:
    """The name of an installed CJK font (Noto Sans CJK preferred), or None."""
    from matplotlib import font_manager

    names = sorted({f.name for f in font_manager.fontManager.ttflist})
    for wanted in ("Noto Sans CJK SC", "Noto Sans CJK", "Noto Sans SC", "WenQuanYi"):
        for name in names:
            if name.startswith(wanted):
                return name
    return None


def title(outcome: str, what_zh: str, what_en: str) -> str:
    zh, en = LABELS.get(outcome, (outcome, outcome))
    if cjk_font():
        plt.rcParams["font.sans-serif"] = [cjk_font(), "DejaVu Sans"]
        return f"{what_zh}（{zh}）/ {what_en} ({en})"
    return f"{what_en} ({en})"


def plot_calibration(fold: dict[str, Any], outcome: str, path: Path | None = None) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    top = 0.05
    for name, r in fold["curves"]["reliability"].items():
        ax.plot(r["mean_predicted"], r["observed_rate"], marker="o", label=name)
        top = max(top, *r["mean_predicted"], *r["observed_rate"])
    ax.set_xlim(0, min(1, top * 1.1))
    ax.set_ylim(0, min(1, top * 1.1))
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title(title(outcome, "校准曲线", "calibration"), fontsize=10)
    ax.legend()
    return _save(fig, path)


def plot_precision(fold: dict[str, Any], outcome: str, path: Path | None = None) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    fr = np.asarray(fold["curves"]["fractions"])
    for name, values in fold["curves"]["precision"].items():
        ax.plot(fr * 100, values, label=name)
    ax.axvline(10, ls=":", color="grey")
    ax.set_xlabel("top k% of each day's district list")
    ax.set_ylabel("precision")
    ax.set_title(title(outcome, "前k%精确率", "precision@k"), fontsize=10)
    ax.legend()
    return _save(fig, path)


def plot_shap(
    contributions: np.ndarray,
    X: np.ndarray,
    names: list[str],
    outcome: str,
    path: Path | None = None,
) -> Figure:
    import shap

    shap.summary_plot(contributions[:, :-1], X, feature_names=names, max_display=15, show=False)
    fig = plt.gcf()
    fig.suptitle(title(outcome, "SHAP 贡献汇总", "SHAP summary"), fontsize=10)
    return _save(fig, path)


def _save(fig: Figure, path: Path | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
    return fig


def metrics_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row per (fold, model) with the headline metrics."""
    rows = []
    for fold in record["folds"]:
        for model in MODEL_ROWS:
            if model in fold["metrics"]:
                m = fold["metrics"][model]
                rows.append(
                    {"fold": fold["index"], "test": fold["periods"]["test"], "model": model}
                    | {k: m.get(k) for k in CARD_METRICS}
                )
    return pd.DataFrame(rows)


def fairness_frame(fold: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(fold["fairness"])
    return frame[[c for c in FAIRNESS_COLS if c in frame.columns]]


def _markdown_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="", border=0)


def write_card(
    record: dict[str, Any], folder: Path, shap_sample: tuple[np.ndarray, np.ndarray] | None = None
) -> Path:
    """Write the card and its figures; return the Markdown path."""
    folder.mkdir(parents=True, exist_ok=True)
    outcome = record["outcome"]
    latest = record["folds"][0]
    plot_calibration(latest, outcome, folder / "calibration.png")
    plot_precision(latest, outcome, folder / "precision_at_k.png")
    figures = ["calibration.png", "precision_at_k.png"]
    if shap_sample is not None:
        contrib, X = shap_sample
        plot_shap(contrib, X, record["features"], outcome, folder / "shap_summary.png")
        figures.append("shap_summary.png")
    zh, en = LABELS.get(outcome, (outcome, outcome))
    metrics, fairness = metrics_table(record), fairness_frame(latest)
    ratios = ", ".join(f"{k} {v:.3f}" for k, v in latest["ratios"].items()) or "no ground truth"
    head = (
        f"# Model card: {en} ({zh})\n\n"
        f"Data cutoff {record['data_cutoff']}; production model trained on "
        f"{record['production_fold']['train']}, calibrated (Platt) on "
        f"{record['production_fold']['valid']}. Latest test fold "
        f"{latest['periods']['test']}: model/oracle ratios: {ratios}. "
        f"LightGBM beats both baselines on every fold: "
        f"{all(f['beats_baselines'] for f in record['folds'])}.\n\n"
    )
    md = head + INTENDED_USE + "\n## Metrics per fold\n\n" + _markdown_table(metrics)
    md += "\n\n## Fairness (latest fold, top 10% of each day's list)\n\n"
    md += _markdown_table(fairness) + "\n\n## Figures\n\n"
    md += "\n".join(f"![{f}]({f})" for f in figures) + "\n"
    (folder / "model_card.md").write_text(md, encoding="utf-8")
    body = "".join(f"<p>{html.escape(p)}</p>" for p in (head + INTENDED_USE).split("\n\n") if p)
    page = (
        f"<!doctype html><html lang='en'><meta charset='utf-8'><title>Model card: {en}</title>"
        f"<body>{body}<h2>Metrics per fold</h2>{_html_table(metrics)}"
        f"<h2>Fairness (latest fold)</h2>{_html_table(fairness)}<h2>Figures</h2>"
        + "".join(f"<img src='{f}' alt='{f}'>" for f in figures)
        + "</body></html>"
    )
    (folder / "model_card.html").write_text(page, encoding="utf-8")
    return folder / "model_card.md"
