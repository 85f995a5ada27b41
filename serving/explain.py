"""Scores and explanations as the API shows them, from a champion and a feature matrix.

Contract: :func:`score_rows` runs one champion over a matrix and returns, per
row, the calibrated probability, band and an explanation body (drivers with
value, contribution, direction and zh-CN/en sentences; the champion's base
value; plan items in words; model name and version). The daily job, what-if
and ad-hoc scoring all go through it, so an explanation looks the same
wherever it comes from. Plan-item words come from the feature catalog.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import numpy as np

from features.catalog import load_catalog
from serving.bands import band_words, bands_of
from serving.champions import ChampionLike

TOP_K = 5


@cache
def plan_item_words() -> dict[str, tuple[str, str]]:
    return {p.id: (p.zh, p.en) for p in load_catalog().plan_items}


@cache
def feature_specs() -> dict[str, str]:
    """Feature column -> catalog entry (spec) name, e.g. checkins_missed_30d -> checkins_missed."""
    return {f.name: f.spec for f in load_catalog().features()}


@cache
def actionable_features() -> dict[str, Any]:
    return {f.name: f for f in load_catalog().features() if f.actionable}


def plan_items(ids: list[str]) -> list[dict[str, str]]:
    words = plan_item_words()
    out = []
    for item in ids:
        zh, en = words.get(item, (item, item))
        out.append({"id": item, "zh": zh, "en": en})
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if x != x else x  # NaN


def driver_dict(d: Any) -> dict[str, Any]:
    contribution = float(d.contribution)
    return {
        "feature": d.feature,
        "value": _num(d.value),
        "contribution": round(contribution, 6),
        "direction": "raises" if contribution > 0 else "lowers",
        "sentence_zh": d.sentence_zh,
        "sentence_en": d.sentence_en,
        "actionable": bool(d.actionable),
        "plan_item": d.plan_item,
    }


def model_ref(champion: ChampionLike) -> dict[str, str]:
    return {
        "name": champion.model_name,
        "version": str(champion.version),
        "trained_at": str(champion.trained_at),
    }


#: Rows from which contributions use several threads (a single row is fastest on one).
THREADED_ROWS = 2048


def _predict_explain(
    champion: ChampionLike, X: np.ndarray, top_k: int
) -> tuple[np.ndarray, list[list[Any]]]:
    """(p, drivers per row), computing the TreeSHAP contributions once.

    A :class:`models.scoring.Champion` exposes its predictor and explainer: the
    contributions sum exactly to the calibrated log-odds (see docs/models.md), so
    p = sigmoid(row sum) is the model's probability and one LightGBM pass does both
    (for a large matrix on several threads). Other champions use predict + explain.
    """
    predictor = getattr(champion, "predictor", None)
    explainer = getattr(champion, "explainer", None)
    if predictor is None or explainer is None:
        return np.asarray(champion.predict(X), dtype=float), champion.explain(X, top_k=top_k)
    X = np.ascontiguousarray(X, dtype=np.float64).reshape(-1, len(champion.feature_names))
    threads = min(os.cpu_count() or 1, 4) if len(X) >= THREADED_ROWS else 1
    contributions = predictor.contributions(X, threads=threads)
    p = 1.0 / (1.0 + np.exp(-contributions.sum(axis=1)))
    return p, explainer.explain(X, contributions, top_k)


def explain_rows(champion: ChampionLike, X: np.ndarray, top_k: int = TOP_K) -> list[list[Any]]:
    """Drivers per row (one TreeSHAP pass, threaded for large matrices)."""
    return _predict_explain(champion, X, top_k)[1]


def body_of(
    champion: ChampionLike, p: float, band: int, drivers: list[Any], model: dict[str, str]
) -> dict[str, Any]:
    """One explanation body (``p`` already rounded to 6 decimals)."""
    return {
        "outcome": champion.outcome,
        "p": p,
        "band": _BANDS[band],
        "base_value": float(champion.base_value),
        "drivers": [driver_dict(d) for d in drivers],
        "plan_items": plan_items(list(champion.plan_items(drivers))),
        "model": model,
    }


_BANDS = {b: band_words(b) for b in range(1, 5)}


def score_rows(
    champion: ChampionLike, X: np.ndarray, top_k: int = TOP_K
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """(p, band, explanation bodies) for every row of ``X`` (what-if, ad-hoc)."""
    p, explained = _predict_explain(champion, X, top_k)
    bands = bands_of(champion.outcome, p)
    model = model_ref(champion)
    rounded = [round(x, 6) for x in p.tolist()]
    band_list = bands.tolist()
    bodies = [
        body_of(champion, rounded[i], band_list[i], drivers, model)
        for i, drivers in enumerate(explained)
    ]
    return p, bands, bodies


def top_spec(body: dict[str, Any]) -> str | None:
    """The catalog entry of the strongest risk-raising driver (一类一策 groups)."""
    for d in body["drivers"]:
        if d["contribution"] > 0:
            return feature_specs().get(d["feature"], d["feature"])
    return None
