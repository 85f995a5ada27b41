"""Scores and explanations as the API shows them, from a champion and a feature matrix.

Contract: :func:`score_rows` runs one champion over a matrix and returns, per
row, the calibrated probability, band and an explanation body (drivers with
value, contribution, direction and zh-CN/en sentences; the champion's base
value; plan items in words; model name and version). The daily job, what-if
and ad-hoc scoring all go through it, so an explanation looks the same
wherever it comes from. Plan-item words come from the feature catalog.

For the daily job's batches, :func:`explain_batch` computes p and the top
drivers as arrays (vectorised TreeSHAP and top-k, :mod:`models.treeshap`,
:meth:`models.explain.Explainer.top`) and :class:`BodyWriter` turns each row
into the same body :func:`body_of` gives for that row's drivers, from memoised
words (the same unit and value recur across thousands of persons).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import numpy as np

from features.catalog import load_catalog
from models.explain import EFFECT_WORDS, MODERATE, STRONG, Top
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


#: Rows per TreeSHAP pass of :func:`explain_batch` (bounds the (rows, features) matrix).
BATCH_ROWS = 50_000


def explain_batch(
    champion: ChampionLike, X: np.ndarray, top_k: int = TOP_K, threads: int = 1
) -> tuple[np.ndarray, Top] | None:
    """(p, top drivers as arrays) for every row of ``X``, or None for a champion
    without the batch path (anything but a :class:`models.scoring.Champion`).

    p = sigmoid(row sum of the contributions): the calibrated log-odds exactly
    (see :func:`_predict_explain`), so one TreeSHAP pass gives both.
    """
    predictor = getattr(champion, "predictor", None)
    explainer = getattr(champion, "explainer", None)
    if predictor is None or explainer is None or not hasattr(predictor, "batch_contributions"):
        return None
    X = np.ascontiguousarray(X, dtype=np.float64).reshape(-1, len(champion.feature_names))
    ps: list[np.ndarray] = []
    tops: list[Top] = []
    for lo in range(0, max(len(X), 1), BATCH_ROWS):
        part = X[lo : lo + BATCH_ROWS]
        contributions = predictor.batch_contributions(part, threads=threads)
        ps.append(1.0 / (1.0 + np.exp(-contributions.sum(axis=1))))
        tops.append(explainer.top(part, contributions, top_k))
    fields = ("units", "contributions", "key_unit", "key_value")
    top = Top(*(np.concatenate([getattr(t, f) for t in tops]) for f in fields))
    return np.concatenate(ps), top


class BodyWriter:
    """Explanation bodies of one champion from :class:`models.explain.Top` rows.

    ``body(p, band, units, contributions, key_units, key_values)`` equals
    ``body_of(champion, p, band, drivers, model_ref(champion))`` for the
    drivers :meth:`models.explain.Explainer.explain` makes of the same row.
    """

    def __init__(self, champion: ChampionLike) -> None:
        self.champion = champion
        self.explainer = champion.explainer  # type: ignore[attr-defined]
        self.model = model_ref(champion)
        self.outcome = champion.outcome
        self.base_value = float(champion.base_value)
        self._words: dict[tuple[int, float], tuple[str, float | None, str, str, bool, Any]] = {}
        self._plans: dict[tuple[str, ...], list[dict[str, str]]] = {}

    def _word(self, unit: int, key_unit: int, key_value: float) -> tuple[Any, ...]:
        found = self._words.get((key_unit, key_value))
        if found is None:
            u = self.explainer.units[unit]
            zh, en, value = self.explainer.describe_key(key_unit, key_value)
            found = (u.name, _num(value), zh, en, bool(u.actionable), u.plan_item)
            if len(self._words) < 200_000:
                self._words[(key_unit, key_value)] = found
        return found

    def body(
        self,
        p: float,
        band: int,
        units: list[int],
        contributions: list[float],
        key_units: list[int],
        key_values: list[float],
    ) -> dict[str, Any]:
        drivers = []
        plans: list[str] = []
        for j, c, ku, kv in zip(units, contributions, key_units, key_values, strict=True):
            name, value, zh, en, actionable, plan = self._word(j, ku, kv)
            up = c > 0
            size = c if up else -c
            eff_zh, eff_en = EFFECT_WORDS[
                (up, 2 if size >= STRONG else 1 if size >= MODERATE else 0)
            ]
            c2 = f"{c:+.2f}"
            plan = plan if actionable and up else None
            if plan:
                plans.append(plan)
            drivers.append(
                {
                    "feature": name,
                    "value": value,
                    "contribution": round(c, 6),
                    "direction": "raises" if up else "lowers",
                    "sentence_zh": f"{zh}，{eff_zh}（{c2}）",
                    "sentence_en": f"{en}: {eff_en} ({c2})",
                    "actionable": actionable,
                    "plan_item": plan,
                }
            )
        ids = tuple(dict.fromkeys(plans))
        items = self._plans.get(ids)
        if items is None:
            items = self._plans[ids] = plan_items(list(ids))
        return {
            "outcome": self.outcome,
            "p": p,
            "band": _BANDS[band],
            "base_value": self.base_value,
            "drivers": drivers,
            "plan_items": items,
            "model": self.model,
        }
