"""Factories for raw input rows (all strings, as read from CSV)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.contract import EVENT_COLUMN_NAMES, PERSON_COLUMN_NAMES

_PERSON = {
    "person_id": "p-1",
    "sex": "M",
    "birth_year": "1986",
    "district": "示例区",
    "town": "东镇",
    "worker_id": "w-1",
    "program": "community_rehab",
    "program_start": "2023-03-01",
    "program_end": "2026-02-28",
    "primary_drug": "methamphetamine",
    "first_use_year": "2006",
    "prior_compulsory_detox": "1",
    "household": "local",
    "living": "with_family",
    "marital": "",
    "education": "",
}


def person(**overrides: Any) -> dict[str, str]:
    """One raw person row; override any column."""
    row = dict(_PERSON)
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def event(
    event_id: str,
    ts: str,
    type: str = "home_visit",
    person_id: str = "p-1",
    result: str = "",
    recorded_at: str = "",
    value: str = "",
    source: str = "worker",
) -> dict[str, str]:
    """One raw event row."""
    return {
        "event_id": event_id,
        "person_id": person_id,
        "ts": ts,
        "recorded_at": recorded_at,
        "type": type,
        "result": result,
        "value": value,
        "source": source,
    }


def persons_frame(*rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(PERSON_COLUMN_NAMES), dtype=str)


def events_frame(*rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(EVENT_COLUMN_NAMES), dtype=str)
