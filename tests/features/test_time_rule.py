"""Property tests of the time rule (DESIGN §3) with hypothesis.

Features at as_of never change when events recorded at or after as_of are
added, deleted or changed; labels never change when events outside
[as_of, as_of + horizon) change (with a fixed snapshot time).
"""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.config import DerivedRule, load_label_config
from features.contract import EVENT_RESULTS, EVENT_TYPES
from features.engine import Session, get_historical_features
from features.labels import compute_labels
from tests.features.history import events, persons

AS_OF = pd.Timestamp("2023-06-01")
BASE = pd.Timestamp("2022-12-01")
SNAPSHOT_US = pd.Timestamp("2024-06-01").value // 1000

_event = st.builds(
    lambda t, ts, lag, r, v, pid: {
        "event_id": "",
        "person_id": pid,
        "type": t,
        "result": (EVENT_RESULTS[t][r % len(EVENT_RESULTS[t])] if EVENT_RESULTS[t] else None),
        "ts": BASE + pd.Timedelta(hours=ts),
        "recorded_at": BASE + pd.Timedelta(hours=ts + lag),
        "value": float(v),
        "source": "worker",
    },
    st.sampled_from(EVENT_TYPES),
    st.integers(0, 24 * 330),
    st.sampled_from([0, 0, 1, 30, 24 * 20]),
    st.integers(0, 5),
    st.integers(0, 9),
    st.sampled_from(["p-1", "p-2"]),
)


def _frame(rows: list[dict]) -> pd.DataFrame:
    rows = [
        {**r, "event_id": f"e-{i}", "ts": str(r["ts"]), "recorded_at": str(r["recorded_at"])}
        for i, r in enumerate(rows)
    ]
    return events(*rows)


PERSONS = persons({"person_id": "p-1"}, {"person_id": "p-2", "program_start": "2023-05-01"})
ENT = pd.DataFrame(
    {"person_id": ["p-1", "p-2", "p-1"], "as_of": [AS_OF, AS_OF, AS_OF + pd.Timedelta(hours=7)]}
)


def _features(rows: list[dict]) -> pd.DataFrame:
    """Features and status of ENT, side by side (status as a column for comparing)."""
    with Session.open(PERSONS, _frame(rows)) as session:
        got = get_historical_features(session, ENT)
    return pd.concat([got.features, pd.Series(got.status, name="status")], axis=1)


def _labels(rows: list[dict], outcome: str, derived: bool) -> list:
    cfg = load_label_config()
    if derived:
        cfg = cfg.model_copy(
            update={
                "outcomes": {
                    **cfg.outcomes,
                    "loss_of_contact": cfg.outcomes["loss_of_contact"].model_copy(
                        update={"derived": DerivedRule(enabled=True)}
                    ),
                }
            }
        )
    with Session.open(PERSONS, _frame(rows)) as session:
        labels = compute_labels(session, session.rows(ENT), cfg, outcome, 90, SNAPSHOT_US)  # type: ignore[arg-type]
    return labels.tolist()


def _future(row: dict) -> dict:
    """Move an event so it is recorded at or after the earliest as_of."""
    lag = max(pd.Timedelta(0), AS_OF + pd.Timedelta(hours=8) - row["recorded_at"])
    return {**row, "recorded_at": row["recorded_at"] + lag}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    past=st.lists(_event, max_size=25),
    future=st.lists(_event, max_size=8),
    changed=st.lists(_event, max_size=8),
)
def test_future_records_never_change_features(past: list, future: list, changed: list) -> None:
    known = [r for r in past if r["recorded_at"] < AS_OF]
    base = _features(known + [_future(r) for r in future])
    assert base.equals(_features(known))
    # changing future-recorded events (anything, but still recorded later) changes nothing
    alt = _features(known + [_future(r) for r in changed])
    pd.testing.assert_frame_equal(base, alt)


def _outside(row: dict) -> bool:
    return not (AS_OF <= row["ts"] < AS_OF + pd.Timedelta(days=90))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inside=st.lists(_event, max_size=20),
    extra=st.lists(_event, max_size=10),
    derived=st.booleans(),
    outcome=st.sampled_from(["relapse", "loss_of_contact"]),
)
def test_events_outside_the_window_never_change_labels(
    inside: list, extra: list, derived: bool, outcome: str
) -> None:
    shift = pd.Timedelta(days=183)
    window = [{**r, "ts": r["ts"] + shift, "recorded_at": r["recorded_at"] + shift} for r in inside]
    window = [r for r in window if not _outside(r)]
    outside = [r for r in extra if _outside(r)]
    ent0 = _labels(window, outcome, derived)
    assert ent0[:2] == _labels(window + outside, outcome, derived)[:2]
