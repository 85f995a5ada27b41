"""The explanation body as the API shows it, from a champion and a feature matrix.

Contract: :func:`body_dict` (with :func:`driver_fields` for each driver) is the
one definition of an explanation body: outcome, calibrated p, band, the
champion's base value, drivers (value, contribution, direction, zh-CN/en
sentences, plan item), plan items in words, model name and version.
:func:`score_rows` runs one champion over a matrix (what-if, ad-hoc) and
:func:`body_of` builds the body of one row's drivers, so an explanation looks
the same wherever it comes from. Plan-item words come from the feature catalog.

For the daily job's batches, :class:`BodyWriter` writes the same bodies as JSON
text from a :class:`models.champion.BatchExplanation` (p and the top drivers as
arrays): its pieces are the JSON of :func:`body_dict` and :func:`driver_fields`
rendered once with placeholders, and the numbers are written per row — byte for
byte ``orjson.dumps(body_of(...))`` (``tests/serving/test_batch_explain.py``).
The model work (contributions, p, choosing and wording drivers) is the
champion's (:mod:`models.champion`); this module only renders.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import orjson

from features.catalog import load_catalog
from models.champion import ChampionLike
from models.explain import MODERATE, STRONG, Explainer, Top, sentences
from serving.bands import band_words, bands_of

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


def driver_fields(
    feature: Any,
    value: Any,
    contribution: Any,
    direction: str,
    sentence_zh: str,
    sentence_en: str,
    actionable: bool,
    plan_item: Any,
) -> dict[str, Any]:
    """One driver of a body: the one definition of its fields and their order."""
    return {
        "feature": feature,
        "value": value,
        "contribution": contribution,
        "direction": direction,
        "sentence_zh": sentence_zh,
        "sentence_en": sentence_en,
        "actionable": actionable,
        "plan_item": plan_item,
    }


def driver_dict(d: Any) -> dict[str, Any]:
    contribution = float(d.contribution)
    return driver_fields(
        d.feature,
        _num(d.value),
        round(contribution, 6),
        "raises" if contribution > 0 else "lowers",
        d.sentence_zh,
        d.sentence_en,
        bool(d.actionable),
        d.plan_item,
    )


def model_ref(champion: ChampionLike) -> dict[str, str]:
    return {
        "name": champion.model_name,
        "version": str(champion.version),
        "trained_at": str(champion.trained_at),
    }


def body_dict(
    outcome: str,
    p: Any,
    band: Any,
    base_value: float,
    drivers: Any,
    plan_items: Any,
    model: Any,
) -> dict[str, Any]:
    """An explanation body: the one definition of its fields and their order."""
    return {
        "outcome": outcome,
        "p": p,
        "band": band,
        "base_value": base_value,
        "drivers": drivers,
        "plan_items": plan_items,
        "model": model,
    }


def body_of(
    champion: ChampionLike, p: float, band: int, drivers: list[Any], model: dict[str, str]
) -> dict[str, Any]:
    """One explanation body (``p`` already rounded to 6 decimals)."""
    return body_dict(
        champion.outcome,
        p,
        _BANDS[band],
        float(champion.base_value),
        [driver_dict(d) for d in drivers],
        plan_items(list(champion.plan_items(drivers))),
        model,
    )


_BANDS = {b: band_words(b) for b in range(1, 5)}


def score_rows(
    champion: ChampionLike, X: np.ndarray, top_k: int = TOP_K
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """(p, band, explanation bodies) for every row of ``X`` (what-if, ad-hoc)."""
    p, explained = champion.predict_explain(X, top_k)
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
            return str(feature_specs().get(d["feature"], d["feature"]))
    return None


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


#: The placeholder of :class:`BodyWriter`'s pieces (no catalog word or model name holds NUL).
_SLOT = "\x00"
_SLOT_VALUE = '"\\u0000"'  # the placeholder as a whole JSON value
_SLOT_IN_TEXT = "\\u0000"  # the placeholder inside a JSON string


def _split(text: str, on: str, parts: int) -> list[str]:
    out = text.split(on)
    if len(out) != parts:
        raise ValueError(f"a body template holds {len(out) - 1} placeholders, not {parts - 1}")
    return out


class BodyWriter:
    """Explanation bodies of one champion as JSON text, from the top drivers as arrays.

    ``BodyWriter(champion, batch.explainer)`` for a
    :class:`models.champion.BatchExplanation` ``batch``; ``render(p, bands, top)``
    returns per row ``(body, top driver, top spec)``: ``"{" + body`` is, byte for
    byte, ``orjson.dumps(body_of(champion, p, band, drivers, model_ref(champion)))``
    for the drivers :meth:`models.explain.Explainer.explain` makes of the same
    row, the top driver is the JSON of its first driver (``"null"`` if none) and
    the top spec is :func:`top_spec` of it. The pieces are :func:`body_dict` and
    :func:`driver_fields` rendered once with placeholders where the numbers go
    (memoised: a driver's words depend on its unit, value and effect size only);
    only the numbers are written per row.
    """

    def __init__(self, champion: ChampionLike, explainer: Explainer) -> None:
        self.champion = champion
        self.explainer = explainer
        units = self.explainer.units
        specs = feature_specs()
        self._spec = [specs.get(u.name, u.name) for u in units]
        frame = body_dict(
            champion.outcome,
            _SLOT,
            _SLOT,
            float(champion.base_value),
            _SLOT,
            _SLOT,
            model_ref(champion),
        )
        # before p, before the band, before the drivers, before the plan items, the rest
        self._frame = tuple(_split(json_text(frame)[1:], _SLOT_VALUE, 5))
        self._bands = {b: json_text(_BANDS[b]) for b in _BANDS}
        self._pieces: dict[tuple[int, float, bool, int], tuple[str, str, str, str, str | None]] = {}
        self._plans: dict[tuple[str, ...], str] = {}

    def _piece(
        self, unit: int, key_unit: int, key_value: float, up: bool, size: int
    ) -> tuple[str, str, str, str, str | None]:
        """(head, middle zh, middle en, tail, plan item) of a driver's JSON: the text
        around its rounded contribution and its two signed ones."""
        u = self.explainer.units[unit]
        zh, en, value = self.explainer.describe_key(key_unit, key_value)
        sentence_zh, sentence_en = sentences(zh, en, (up, size), _SLOT)
        plan = u.plan_for(up)
        text = json_text(
            driver_fields(
                u.name,
                _num(value),
                _SLOT,
                "raises" if up else "lowers",
                sentence_zh,
                sentence_en,
                bool(u.actionable),
                plan,
            )
        )
        head, rest = _split(text, _SLOT_VALUE, 2)
        middle_zh, middle_en, tail = _split(rest, _SLOT_IN_TEXT, 3)
        return head, middle_zh, middle_en, tail, plan

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
        before_p, before_band, before_drivers, before_items, rest = self._frame
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
                f"{before_p}{p_text[i]}{before_band}{bands_json[bands[i]]}{before_drivers}"
                f"[{','.join(texts[lo:hi])}]{before_items}{items}{rest}"
            )
            spec = spec_of[spec_unit[i]] if has_spec[i] else None
            out.append((body, texts[lo], spec))
        return out

    def _empty(self, p: float, band: int) -> tuple[str, str, str | None]:
        before_p, before_band, before_drivers, before_items, rest = self._frame
        items = json_text(plan_items([]))
        body = (
            f"{before_p}{json_number(p)}{before_band}{self._bands[band]}{before_drivers}"
            f"[]{before_items}{items}{rest}"
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
