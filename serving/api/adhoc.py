"""Ad-hoc scoring: a supplied feature row, or a person and history in the input contract.

Contract: :func:`row_vector` checks a feature dict against a champion's
feature list (every name present, no unknown name, finite numbers) and returns
the row as a 1-D float64 array. No pandas: this is the fast path (one C-level
look-up of all names, one array, one finiteness check; the complete error
report is only built for a row that fails). :func:`score_row` scores and
explains such a row with a champion and returns the API body — the body
:func:`serving.explanations.score_rows` gives, with the same numbers: a
:class:`models.champion.Champion` goes through its one-row scorer
(``Champion.one_row()``, built once per loaded champion; the first time in a
worker thread, by :func:`one_row`), any other champion through ``score_rows``.
:func:`features_from_history` validates a person and events with the same
rules as file ingest (:mod:`features.validate`) and builds their point-in-time
features at ``as_of`` with :func:`features.build_features`; rejections come
back as field errors (``body.person.birth_year``, ``body.events[2].type``).
Nothing is stored.
"""

from __future__ import annotations

import asyncio
import functools
import math
import operator
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features import build_features
from features.contract import EVENT_COLUMN_NAMES, PERSON_COLUMN_NAMES
from features.validate import frame_from_records, validate_events, validate_persons
from models.champion import ChampionLike
from models.one_row import OneRow
from serving.bands import bands_of
from serving.explanations import TOP_K, body_of, model_ref, score_rows


class FieldErrors(ValueError):
    """Input problems, one ``{"field", "message"}`` per problem."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{f['field']}: {f['message']}" for f in fields))
        self.fields = fields


def _row_errors(names: Sequence[str], features: dict[str, Any]) -> list[dict[str, str]]:
    errors = [
        {"field": f"body.features.{n}", "message": "missing; every model feature is needed"}
        for n in names
        if n not in features
    ]
    known = set(names)
    errors += [
        {"field": f"body.features.{n}", "message": "not a feature of the model"}
        for n in features
        if n not in known
    ]
    errors += [
        {"field": f"body.features.{n}", "message": "must be a finite number"}
        for n, v in features.items()
        if type(v) not in _NUMBERS or not math.isfinite(v)
    ]
    return errors


_NUMBERS = frozenset({float, int})


@functools.lru_cache(maxsize=16)
def _getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        name = names[0]
        return lambda d: (d[name],)
    return operator.itemgetter(*names)


def row_vector(names: Sequence[str], features: dict[str, Any]) -> np.ndarray:
    """The row as float64 in ``names`` order (raises :class:`FieldErrors` naming each field)."""
    if len(features) == len(names) and set(map(type, features.values())) <= _NUMBERS:
        try:
            values = _getter(tuple(names))(features)
        except KeyError:
            pass
        else:
            x = np.array(values, dtype=np.float64)
            if np.isfinite(x).all():
                return x
    raise FieldErrors(_row_errors(names, features))


_built: dict[int, tuple[ChampionLike, OneRow | None]] = {}


async def one_row(champion: ChampionLike) -> OneRow | None:
    """The champion's one-row scorer (None for a champion without one).

    The champion builds it once (``ChampionLike.one_row``); the first call for a
    champion object runs in a worker thread, so the event loop keeps serving while
    a newly loaded champion's tables are computed and checked (~0.3 s). The memo
    holds the object, so its id stays its own.
    """
    hit = _built.get(id(champion))
    if hit is not None and hit[0] is champion:
        return hit[1]
    one = await asyncio.to_thread(champion.one_row)
    if len(_built) >= 8:  # champions of earlier reloads
        _built.clear()
    _built[id(champion)] = (champion, one)
    return one


def score_row(champion: ChampionLike, one: OneRow | None, x: np.ndarray) -> dict[str, Any]:
    """The explanation body of one row (what ``score_rows`` gives for it)."""
    if one is None:
        return score_rows(champion, x.reshape(1, -1))[2][0]
    p, _, drivers = one.score(x, TOP_K)
    band = int(bands_of(champion.outcome, np.array([p]))[0])
    return body_of(champion, round(p, 6), band, drivers, model_ref(champion))


def _as_fields(rejections: pd.DataFrame, table: str) -> list[dict[str, str]]:
    out = []
    for r in rejections.itertuples(index=False):
        where = "body.person" if table == "person" else f"body.events[{int(str(r.row)) - 1}]"
        out.append({"field": f"{where}.{r.column}", "message": f"{r.code}: {r.reason}"})
    return out


def _id_text(value: object) -> str:
    """An id as the validated frame holds it (text or a whole number; anything else: none)."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value).strip()
    return ""


def features_from_history(
    person: dict[str, Any], events: list[dict[str, Any]], as_of: date
) -> pd.DataFrame:
    """One feature row for the supplied person at ``as_of`` (raises :class:`FieldErrors`)."""
    unknown = [
        {"field": f"body.person.{k}", "message": "not a column of the persons contract"}
        for k in person
        if k not in PERSON_COLUMN_NAMES
    ]
    if unknown:
        raise FieldErrors(unknown)
    vp = validate_persons(frame_from_records([person], PERSON_COLUMN_NAMES), "person")
    errors = _as_fields(vp.rejections, "person")
    pid = _id_text(person.get("person_id"))
    for i, e in enumerate(events):
        if _id_text(e.get("person_id", pid)) != pid:
            errors.append(
                {
                    "field": f"body.events[{i}].person_id",
                    "message": "must be the supplied person's id",
                }
            )
    rows = [{"person_id": pid, **e} for e in events]
    if events:
        ve = validate_events(
            frame_from_records(rows, EVENT_COLUMN_NAMES), pd.Index([pid]), "events"
        )
        errors += _as_fields(ve.rejections, "events")
        good_events = ve.good
    else:
        good_events = pd.DataFrame({c: pd.Series(dtype="object") for c in EVENT_COLUMN_NAMES})
    if errors:
        raise FieldErrors(errors)
    if good_events.empty:
        good_events = validate_events(
            frame_from_records([], EVENT_COLUMN_NAMES), pd.Index([pid]), "events"
        ).good
    entities = pd.DataFrame({"person_id": [pid], "as_of": [pd.Timestamp(as_of)]})
    return build_features(entities, persons=vp.good, events=good_events)
