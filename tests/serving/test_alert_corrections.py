"""Alerts honour corrections exactly as the features do (issue 13: the rule drifted once).

A positive urine test corrected to negative (same person, type and ts,
recorded later) raises ``positive_test`` only on the days before the
correction was recorded; the feature ``last_test_positive`` agrees on each day.
Alerts are computed by the engine in the same pass as the features (issue 14
item 4), by both backends.
"""

from __future__ import annotations

import pytest

from features import Session, build_features, get_historical_features
from tests.features.history import at, ev, events, persons

POSITIVE = ev("2025-05-28 09:00", "urine_test", "positive", recorded_at="2025-05-29")
CORRECTED = {**POSITIVE, "event_id": "fix-1", "result": "negative", "recorded_at": "2025-05-31"}


def _kinds(day: str, backend: str) -> set[str]:
    with Session.open(persons(), events(POSITIVE, CORRECTED)) as session:
        got = get_historical_features(session, at(day), alerts=True, backend=backend)
    assert got.alerts is not None
    return set(got.alerts.kind.tolist())


@pytest.mark.parametrize("backend", ["array", "sql"])
def test_a_corrected_positive_test_alerts_only_until_the_correction_is_recorded(
    backend: str,
) -> None:
    assert "positive_test" in _kinds("2025-05-30", backend)  # the first reading was known
    assert "positive_test" not in _kinds("2025-06-01", backend)  # corrected on 05-31
    feats = build_features(
        at("2025-05-30", "2025-06-01"), persons=persons(), events=events(POSITIVE, CORRECTED)
    )
    assert feats["last_test_positive"].tolist() == [1, 0]
