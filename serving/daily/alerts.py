"""The words of the alerts the daily job stores (the rules are the catalog's).

Contract: alerts and 一批一策 cohort flags are declared in
``features/catalog.yaml`` (``alerts``, ``cohort_flags``, thresholds in
``alert_settings``) and computed by the feature engine in the same pass as
the features (:func:`features.get_historical_features` with ``alerts``), so
knowledge time and corrections apply to them exactly as to features.
:func:`alert_message` renders one alert's zh-CN/en message from the catalog's
templates: ``{days}`` overdue days, ``{date}`` the alert's date (due date,
event date or transfer date), ``{value}`` the event's value.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from features.catalog import load_catalog


@cache
def _words() -> dict[str, tuple[str, str]]:
    return {a.name: (a.zh, a.en) for a in load_catalog().alerts}


def alert_message(
    kind: str, since: pd.Timestamp | None, days: float, value: float
) -> dict[str, str]:
    """The zh-CN/en message of one alert."""
    zh, en = _words()[kind]
    fill = {
        "days": "" if np.isnan(days) else int(days),
        "date": "" if since is None or pd.isna(since) else since.strftime("%Y-%m-%d"),
        "value": "" if np.isnan(value) else f"{value:g}",
    }
    return {"kind": kind, "zh": zh.format(**fill), "en": en.format(**fill)}
