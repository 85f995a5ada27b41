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
import orjson

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

    A :class:`models.champion.Champion` exposes its predictor and explainer: the
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
    champion: ChampionLike, X: np.ndarray, top_k: int = TOP_K, threads: int | None = None
) -> tuple[np.ndarray, Top] | None:
    """(p, top drivers as arrays) for every row of ``X``, or None for a champion
    without the batch path (anything but a :class:`models.champion.Champion`).

    p = sigmoid(row sum of the contributions): the calibrated log-odds exactly
    (see :func:`_predict_explain`), so one TreeSHAP pass gives both. The
    contributions come from the TreeSHAP tables (numpy, one thread); ``threads``
    (default: as :func:`_predict_explain`) applies only when LightGBM computes
    them for a model the tables decline.
    """
    if threads is None:
        threads = min(os.cpu_count() or 1, 4) if len(X) >= THREADED_ROWS else 1
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


def json_text(value: Any) -> str:
    """``orjson.dumps(value).decode()``."""
    return orjson.dumps(value).decode()


def json_numbers(values: np.ndarray) -> list[str]:
    """Each float as orjson writes it (one orjson call for all; NaN is ``null``)."""
    if not values.size:
        return []
    return orjson.dumps(values.ravel().tolist()).decode()[1:-1].split(",")


def json_number(x: float) -> str:
    """One float as orjson writes it."""
    return orjson.dumps(x).decode()


def round_like_python(x: np.ndarray, digits: int) -> np.ndarray:
    """``round(v, digits)`` of every element, the same floats Python's round gives.

    numpy rounds ``x * 10**digits`` (one rounding error) where Python rounds the
    exact binary value; they can only disagree next to a half, so those elements
    (and non-finite or huge ones) are rounded by Python itself.
    """
    scale = 10.0**digits
    with np.errstate(invalid="ignore", over="ignore"):
        y = x * scale
        out = np.rint(y) / scale
        near_half = np.abs(y - np.floor(y) - 0.5) < 1e-6
        risky = near_half | ~np.isfinite(y) | (np.abs(y) >= 2.0**52)
    flat, source = out.reshape(-1), x.reshape(-1)
    for i in np.flatnonzero(risky.reshape(-1)).tolist():
        flat[i] = round(float(source[i]), digits)
    return out


def signed_two_decimals(x: np.ndarray) -> list[str]:
    """``f"{v:+.2f}"`` of every element (formatted once per distinct result)."""
    flat = x.reshape(-1)
    hundredths = round_like_python(flat, 2) * 100.0
    finite = np.isfinite(hundredths) & (np.abs(hundredths) < 2.0**52)
    key = np.rint(np.where(finite, hundredths, 0.0)).astype(np.int64) * 2 + np.signbit(flat)
    key[~finite] = np.iinfo(np.int64).min  # formatted one by one below
    uniques, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    texts = [f"{float(flat[i]):+.2f}" for i in first.tolist()]
    out = [texts[u] for u in inverse.tolist()]
    for i in np.flatnonzero(~finite).tolist():
        out[i] = f"{float(flat[i]):+.2f}"
    return out


class BodyWriter:
    """Explanation bodies of one champion as JSON text, from :class:`models.explain.Top` rows.

    ``render(p, band, units, contributions, key_units, key_values)`` returns
    ``(body, top driver, top spec)``: ``"{" + body`` is, byte for byte,
    ``orjson.dumps(body_of(champion, p, band, drivers, model_ref(champion)))``
    for the drivers :meth:`models.explain.Explainer.explain` makes of the same
    row, the top driver is the JSON of its first driver (``"null"`` if none) and
    the top spec is :func:`top_spec` of it. The text is assembled from memoised
    pieces (a driver's words depend on its unit, value and effect size only);
    only the numbers are written per row.
    """

    def __init__(self, champion: ChampionLike) -> None:
        self.champion = champion
        self.explainer = champion.explainer  # type: ignore[attr-defined]
        units = self.explainer.units
        specs = feature_specs()
        self._spec = [specs.get(u.name, u.name) for u in units]
        self._head = (
            f'"outcome":{json_text(champion.outcome)},"p":',
            f',"base_value":{json_number(float(champion.base_value))},"drivers":[',
            f',"model":{json_text(model_ref(champion))}}}',
        )
        self._bands = {b: json_text(_BANDS[b]) for b in _BANDS}
        self._pieces: dict[tuple[int, float, bool, int], tuple[str, str, str, str, str | None]] = {}
        self._plans: dict[tuple[str, ...], str] = {}

    def _piece(
        self, unit: int, key_unit: int, key_value: float, up: bool, size: int
    ) -> tuple[str, str, str, str, str | None]:
        """(head, middle zh, middle en, tail, plan item) of a driver's JSON."""
        u = self.explainer.units[unit]
        zh, en, value = self.explainer.describe_key(key_unit, key_value)
        eff_zh, eff_en = EFFECT_WORDS[(up, size)]
        plan = u.plan_item if u.actionable and up else None
        return (
            f'{{"feature":{json_text(u.name)},"value":{json_text(_num(value))},"contribution":',
            f',"direction":"{"raises" if up else "lowers"}","sentence_zh":'
            f"{json_text(zh)[:-1]}，{eff_zh}（",
            f'）","sentence_en":{json_text(en)[:-1]}: {eff_en} (',
            f')","actionable":{json_text(bool(u.actionable))},"plan_item":{json_text(plan)}}}',
            plan,
        )

    def render(
        self, p: list[float], bands: list[int], top: Top
    ) -> list[tuple[str, str, str | None]]:
        """(body, top driver, top spec) of each row of a chunk (see the class docstring)."""
        C = np.asarray(top.contributions, dtype=np.float64)
        n, k = C.shape
        c6 = round_like_python(C, 6)
        n6 = json_numbers(c6)
        c2 = signed_two_decimals(C)
        up = C > 0
        size = np.abs(C)
        grade = (size >= MODERATE).astype(np.int64) + (size >= STRONG)
        # one memo key per driver: (key unit, key value, raises, size) as one int64
        if not C.size:
            return [self._empty(p[i], bands[i]) for i in range(n)]
        key_unit = np.asarray(top.key_unit, np.int64).reshape(-1)
        key_value = np.ascontiguousarray(top.key_value, np.float64).reshape(-1)
        _, value_code = np.unique(key_value.view(np.int64), return_inverse=True)
        keys = (key_unit * (int(value_code.max()) + 1) + value_code.reshape(-1)) * 6
        keys += up.reshape(-1) * 3 + grade.reshape(-1)
        _, first_of, inverse = np.unique(keys, return_index=True, return_inverse=True)
        units = np.asarray(top.units, np.int64).reshape(-1)
        up_flat, grade_flat = up.reshape(-1), grade.reshape(-1)
        pieces = [
            self._memo(
                int(units[f]),
                int(key_unit[f]),
                float(key_value[f]),
                bool(up_flat[f]),
                int(grade_flat[f]),
            )
            for f in first_of.tolist()
        ]
        which = inverse.reshape(-1).tolist()
        raising = c6 > 0  # top_spec reads the rounded contribution
        has_spec: list[bool] = np.asarray(raising.any(axis=1), dtype=bool).tolist()
        spec_unit = units.reshape(n, k)[np.arange(n), raising.argmax(axis=1)].tolist()
        spec_of = self._spec
        p_text = json_numbers(np.asarray(p, dtype=np.float64))
        heads, zhs, ens, tails, plans = zip(*pieces, strict=True)
        texts = [
            f"{heads[w]}{n6[d]}{zhs[w]}{c2[d]}{ens[w]}{c2[d]}{tails[w]}"
            for d, w in enumerate(which)
        ]
        plan_of = [plans[w] for w in which]
        start, base, model = self._head
        bands_json = self._bands
        out = []
        for i in range(n):
            lo, hi = i * k, i * k + k
            ids = tuple(plan_of[lo:hi])
            items = self._plans.get(ids)
            if items is None:
                unique_ids = list(dict.fromkeys(x for x in ids if x))
                items = self._plans[ids] = json_text(plan_items(unique_ids))
            body = (
                f'{start}{p_text[i]},"band":{bands_json[bands[i]]}{base}'
                f'{",".join(texts[lo:hi])}],"plan_items":{items}{model}'
            )
            spec = spec_of[spec_unit[i]] if has_spec[i] else None
            out.append((body, texts[lo], spec))
        return out

    def _empty(self, p: float, band: int) -> tuple[str, str, str | None]:
        start, base, model = self._head
        items = json_text(plan_items([]))
        body = (
            f'{start}{json_number(p)},"band":{self._bands[band]}{base}],"plan_items":{items}{model}'
        )
        return body, "null", None

    def _memo(
        self, unit: int, key_unit: int, key_value: float, up: bool, size: int
    ) -> tuple[str, str, str, str, str | None]:
        key = (key_unit, key_value, up, size)
        found = self._pieces.get(key)
        if found is None:
            found = self._piece(unit, key_unit, key_value, up, size)
            if len(self._pieces) < 400_000:
                self._pieces[key] = found
        return found
