"""Tiny hand-built histories in canonical form (what build_features takes)."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd

from features.contract import EVENT_COLUMN_NAMES, PERSON_COLUMN_NAMES

_ids = itertools.count(1)
_PERSON: dict[str, Any] = {
    "person_id": "p-1",
    "sex": "M",
    "birth_year": 1986,
    "district": "示例区",
    "town": "东镇",
    "worker_id": "w-1",
    "program": "community_rehab",
    "program_start": "2023-01-01",
    "program_end": "2025-12-31",
    "primary_drug": "methamphetamine",
    "first_use_year": 2006,
    "prior_compulsory_detox": 1,
    "household": "local",
    "living": "with_family",
    "marital": None,
    "education": None,
}


def persons(*overrides: dict[str, Any]) -> pd.DataFrame:
    rows = [{**_PERSON, **o} for o in (overrides or ({},))]
    frame = pd.DataFrame(rows, columns=list(PERSON_COLUMN_NAMES))
    for c in ("birth_year", "first_use_year", "prior_compulsory_detox"):
        frame[c] = frame[c].astype("Int64")
    for c in ("program_start", "program_end"):
        frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
    for c in frame.columns.difference(
        ["birth_year", "first_use_year", "prior_compulsory_detox", "program_start", "program_end"]
    ):
        frame[c] = frame[c].astype("string")
    return frame


def ev(
    ts: str,
    type: str,
    result: str | None = None,
    *,
    recorded_at: str | None = None,
    value: float | None = None,
    person_id: str = "p-1",
) -> dict[str, Any]:
    return {
        "event_id": f"e-{next(_ids)}",
        "person_id": person_id,
        "ts": ts,
        "recorded_at": recorded_at or ts,
        "type": type,
        "result": result,
        "value": value,
        "source": "worker",
    }


def events(*rows: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(EVENT_COLUMN_NAMES))
    for c in ("ts", "recorded_at"):
        frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
    frame["value"] = frame["value"].astype("float64")
    for c in ("event_id", "person_id", "type", "result", "source"):
        frame[c] = frame[c].astype("string")
    return frame


def at(*dates: str, person_id: str = "p-1") -> pd.DataFrame:
    return pd.DataFrame(
        {"person_id": [person_id] * len(dates), "as_of": pd.to_datetime(list(dates))}
    )
