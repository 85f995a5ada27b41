"""Ad-hoc scoring: a supplied feature row, or a person and history in the input contract.

Contract: :func:`matrix_from_row` checks a feature dict against a champion's
feature list (every name present, no unknown name, finite numbers) and returns
a one-row matrix — no pandas, this is the fast path. :func:`features_from_history`
validates a person and events with the same rules as file ingest
(:mod:`features.validate`) and builds their point-in-time features at
``as_of`` with :func:`features.build_features`; rejections come back as
field errors (``body.person.birth_year``, ``body.events[2].type``). Nothing is
stored.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features import build_features
from features.contract import EVENT_COLUMN_NAMES, PERSON_COLUMN_NAMES
from features.validate import validate_events, validate_persons
from serving.champions import ChampionLike


class FieldErrors(ValueError):
    """Input problems, one ``{"field", "message"}`` per problem."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{f['field']}: {f['message']}" for f in fields))
        self.fields = fields


def matrix_from_row(champion: ChampionLike, features: dict[str, float]) -> np.ndarray:
    names = champion.feature_names
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
        if not math.isfinite(v)
    ]
    if errors:
        raise FieldErrors(errors)
    return np.array([[features[n] for n in names]], dtype=np.float64)


def _strings(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    clean = [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]
    frame = pd.DataFrame(clean, dtype=str)
    for c in columns:
        if c not in frame.columns:
            frame[c] = ""
    return frame


def _as_fields(rejections: pd.DataFrame, table: str) -> list[dict[str, str]]:
    out = []
    for r in rejections.itertuples(index=False):
        where = "body.person" if table == "person" else f"body.events[{int(str(r.row)) - 1}]"
        out.append({"field": f"{where}.{r.column}", "message": f"{r.code}: {r.reason}"})
    return out


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
    vp = validate_persons(_strings([person], PERSON_COLUMN_NAMES), "person")
    errors = _as_fields(vp.rejections, "person")
    pid = str(person.get("person_id", ""))
    for i, e in enumerate(events):
        if str(e.get("person_id", pid)) != pid:
            errors.append(
                {
                    "field": f"body.events[{i}].person_id",
                    "message": "must be the supplied person's id",
                }
            )
    rows = [{"person_id": pid, **e} for e in events]
    if events:
        ve = validate_events(_strings(rows, EVENT_COLUMN_NAMES), pd.Index([pid]), "events")
        errors += _as_fields(ve.rejections, "events")
        good_events = ve.good
    else:
        good_events = pd.DataFrame({c: pd.Series(dtype="object") for c in EVENT_COLUMN_NAMES})
    if errors:
        raise FieldErrors(errors)
    if good_events.empty:
        good_events = validate_events(
            _strings([], EVENT_COLUMN_NAMES), pd.Index([pid]), "events"
        ).good
    entities = pd.DataFrame({"person_id": [pid], "as_of": [pd.Timestamp(as_of)]})
    return build_features(entities, persons=vp.good, events=good_events)
