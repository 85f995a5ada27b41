"""The numpy engine equals the SQL compiler (the declarative reference) on random histories.

Histories mix every event type, late records, corrections (same person, type
and ts, recorded later — including several versions and same-instant ties),
events exactly at as_of and entity rows with many as_of per person, so each
kind of catalog feature, the cohort status and both labels are compared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.catalog import Catalog, load_catalog
from features.config import load_label_config
from features.contract import EVENT_CODED_RESULTS, EVENT_RESULTS, EVENT_TYPES
from features.engine import Session, get_historical_features
from features.engine.codes import MAX_US
from features.engine.records import superseded_at
from features.labels import compute_labels
from tests.features.history import events, persons

BASE = pd.Timestamp("2022-11-01")
AS_OFS = [pd.Timestamp("2023-03-01"), pd.Timestamp("2023-06-01"), pd.Timestamp("2023-06-01 07:00")]
PERSONS = persons(
    {"person_id": "p-1", "marital": "divorced"},
    {"person_id": "p-2", "program_start": "2023-05-01", "first_use_year": None},
    {
        "person_id": "p-3",
        "program_end": "2023-07-01",
        "household": None,
        "living": None,
        "marital": "remarried",
    },
)


#: Purchase results (``<medicine>@<pharmacy>``): pharmacies named, repeated with
#: spaces, after a second ``@``, or not at all.
_PURCHASES = ("tramadol@ph-1", "@ph-2", " x@ph-1 ", "codeine_syrup", None, "a@b@ph-3")


def _result(t: str, r: int) -> str | None:
    """An enforced result, or for a type with known-but-optional results one of
    them, none, or other free text; a purchase names a pharmacy or not."""
    if t == "controlled_medicine_purchase":
        return _PURCHASES[r % len(_PURCHASES)]
    if EVENT_RESULTS[t]:
        return EVENT_RESULTS[t][r % len(EVENT_RESULTS[t])]
    coded = (*EVENT_CODED_RESULTS.get(t, ()), None, "a free note")
    return coded[r % len(coded)] if len(coded) > 2 else None


_event = st.builds(
    lambda t, day, hour, lag, r, v, pid: {
        "person_id": pid,
        "type": t,
        "result": _result(t, r),
        "ts": BASE + pd.Timedelta(days=day, hours=hour),
        "lag": lag,
        "value": float(v) if v else None,
    },
    st.sampled_from(EVENT_TYPES),
    st.integers(0, 300),
    st.sampled_from([0, 9, 0]),
    st.sampled_from([0, 0, 1, 30, 24 * 20, 24 * 200]),
    st.integers(0, 5),
    st.integers(0, 9),
    st.sampled_from(["p-1", "p-2", "p-3"]),
)


def _frame(rows: list[dict], corrections: list[tuple[int, int, int]]) -> pd.DataFrame:
    out = []
    for r in rows:
        rec = r["ts"] + pd.Timedelta(hours=r["lag"])
        out.append({**r, "recorded_at": rec})
    for idx, lag, r in corrections:  # a later version of an existing event
        if out:
            orig = out[idx % len(out)]
            t = orig["type"]
            result = _result(t, r)
            rec = orig["recorded_at"] + pd.Timedelta(hours=lag)
            out.append({**orig, "result": result, "recorded_at": rec})
    return events(
        *[
            {
                "event_id": f"e-{i}",
                "person_id": r["person_id"],
                "ts": str(r["ts"]),
                "recorded_at": str(r["recorded_at"]),
                "type": r["type"],
                "result": r["result"],
                "value": r["value"],
                "source": "worker",
            }
            for i, r in enumerate(out)
        ]
    )


def _sensitive() -> Catalog:
    """The catalog with the quantity rules' thresholds low enough to fire on tiny histories."""
    raw = load_catalog().model_dump(by_alias=True)
    low = {"above": 3.0, "at_least": 2.0, "factor": 1.5}
    for alert in raw["alerts"]:
        if alert["rule"] in {"sum_above", "places_at_least", "sharp_rise"}:
            alert.update({k: v for k, v in low.items() if alert.get(k) is not None})
    return Catalog.model_validate(raw)


SENSITIVE = _sensitive()

ENT = pd.DataFrame(
    {
        "person_id": [p for a in AS_OFS for p in ("p-1", "p-2", "p-3")] + ["p-1"],
        "as_of": [a for a in AS_OFS for _ in range(3)] + [BASE + pd.Timedelta(days=150)],
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(_event, max_size=40),
    corrections=st.lists(
        st.tuples(st.integers(0, 100), st.sampled_from([0, 1, 48, 24 * 40]), st.integers(0, 5)),
        max_size=6,
    ),
    at_as_of=st.booleans(),
)
def test_numpy_engine_equals_sql_reference(
    rows: list[dict], corrections: list[tuple[int, int, int]], at_as_of: bool
) -> None:
    if at_as_of and rows:  # one event exactly at an as_of
        rows = [*rows, {**rows[0], "ts": AS_OFS[1], "lag": 0}]
    frame = _frame(rows, corrections)
    with Session.open(PERSONS, frame) as session:
        got_all = get_historical_features(session, ENT, backend="array", alerts=True)
        want_all = get_historical_features(session, ENT, backend="sql", alerts=True)
    assert got_all.status.astype(str).tolist() == want_all.status.astype(str).tolist()
    # alerts and cohort flags: declared once in the catalog, equal from both backends
    assert got_all.alerts is not None and want_all.alerts is not None
    a, b = got_all.alerts, want_all.alerts
    assert a.row.tolist() == b.row.tolist() and a.kind.tolist() == b.kind.tolist()
    assert a.since_us.tolist() == b.since_us.tolist()
    np.testing.assert_array_equal(a.days, b.days)
    np.testing.assert_array_equal(a.value, b.value)
    assert a.cohort_mask.tolist() == b.cohort_mask.tolist()
    with Session.open(PERSONS, frame) as session:  # medicine rules with low thresholds
        low = [
            get_historical_features(
                session, ENT, catalog=SENSITIVE, backend=name, alerts=True, cohort_only=True
            ).alerts
            for name in ("array", "sql")
        ]
    assert low[0] is not None and low[1] is not None
    for field in ("row", "kind", "since_us", "days", "value"):
        np.testing.assert_array_equal(getattr(low[0], field), getattr(low[1], field))
    got, want = got_all.features, want_all.features
    assert list(got.columns) == list(want.columns)
    for col in got.columns:
        np.testing.assert_allclose(
            got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float), err_msg=col
        )
        assert got[col].dtype == want[col].dtype, col


_OUTCOME_TYPES = {"urine_test", "hair_test", "lost_contact"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_event, max_size=40), horizon=st.sampled_from([30, 90]))
def test_whether_a_label_is_known_never_depends_on_the_outcome(
    rows: list[dict], horizon: int
) -> None:
    """DESIGN §3: removing every outcome event changes labels from 1 to 0, never known-ness."""
    frame = _frame(rows, [])
    without = frame[~frame["type"].isin(_OUTCOME_TYPES)].reset_index(drop=True)
    cfg = load_label_config()
    observed = (BASE + pd.Timedelta(days=200)).value // 1000
    for outcome in ("relapse", "loss_of_contact"):
        got = []
        for evs in (frame, without):
            with Session.open(PERSONS, evs) as session:
                rows = session.rows(ENT)
                got.append(compute_labels(session, rows, cfg, outcome, horizon, observed))  # type: ignore[arg-type]
        assert got[0].isna().tolist() == got[1].isna().tolist()
        assert not (got[1].fillna(0) == 1).any()


def test_superseded_at_versions_and_ties() -> None:
    pidx = np.array([0, 0, 0, 0, 1, 0], np.int32)
    tc = np.array([1, 1, 1, 1, 1, 2], np.int8)
    ts = np.array([10, 10, 10, 10, 10, 10], np.int64)
    rec = np.array([10, 20, 20, 30, 40, 50], np.int64)
    sup = superseded_at(pidx, tc, ts, rec)
    assert sup is not None
    assert sup.tolist() == [20, 30, 30, MAX_US, MAX_US, MAX_US]
    assert superseded_at(pidx[:1], tc[:1], ts[:1], rec[:1]) is None
