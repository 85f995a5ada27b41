"""Alerts honour corrections exactly as the features do (issue 13: the rule drifted once).

A positive urine test corrected to negative (same person, type and ts,
recorded later) raises ``positive_test`` only on the days before the
correction was recorded; the feature ``last_test_positive`` agrees on each day.
"""

from __future__ import annotations

import pandas as pd

from features import build_features
from serving.alerts import AlertRules, compute_alerts
from tests.features.history import at, ev, events, persons

POSITIVE = ev("2025-05-28 09:00", "urine_test", "positive", recorded_at="2025-05-29")
CORRECTED = {**POSITIVE, "event_id": "fix-1", "result": "negative", "recorded_at": "2025-05-31"}


def _kinds(day: str) -> set[str]:
    evs = events(POSITIVE, CORRECTED)
    got = compute_alerts(persons(), evs, pd.Timestamp(day), AlertRules())
    return set(got["kind"])


def test_a_corrected_positive_test_alerts_only_until_the_correction_is_recorded() -> None:
    assert "positive_test" in _kinds("2025-05-30")  # the lab's first reading is what was known
    assert "positive_test" not in _kinds("2025-06-01")  # corrected on 05-31: no alert
    feats = build_features(
        at("2025-05-30", "2025-06-01"), persons=persons(), events=events(POSITIVE, CORRECTED)
    )
    assert feats["last_test_positive"].tolist() == [1, 0]
