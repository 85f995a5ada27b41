"""The catalog's alert and cohort-flag rules on tiny histories with exact dates, both backends.

Person ``p-1`` starts on 2023-01-01 (year 3 on 2025-06-01: check-ins due every
91 days, tests every 91 days, plus 7 days' grace); the thresholds are the
catalog's ``alert_settings`` (recent 7 days, agreement ending 60 days,
transferred in 30 days, first 90 days).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from features import Session, get_historical_features
from features.engine import NO_TIME
from tests.features.history import at, ev, events, persons

DAY = "2025-06-01"
BACKENDS = ["array", "sql"]


def _alerts(backend: str, *rows: dict[str, Any], person: dict[str, Any] | None = None) -> dict:
    with Session.open(persons(person or {}), events(*rows)) as session:
        got = get_historical_features(session, at(DAY), alerts=True, backend=backend)
    assert got.alerts is not None
    a = got.alerts
    out: dict[str, Any] = {"_cohort": int(a.cohort_mask[0])}
    for kind, since, days, value in zip(a.kind, a.since_us, a.days, a.value, strict=True):
        when = None if since == NO_TIME else str(pd.Timestamp(int(since), unit="us").date())
        out[kind] = (
            when,
            None if np.isnan(days) else int(days),
            None if np.isnan(value) else value,
        )
    return out


# A test and a check-in that keep the overdue alerts quiet, for rules that are not about them.
QUIET = (
    ev("2025-05-20 10:00", "check_in", "attended"),
    ev("2025-05-20 10:00", "urine_test", "negative"),
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_overdue_check_in_counts_whole_days_past_interval_and_grace(backend: str) -> None:
    test = ev("2025-05-20 10:00", "urine_test", "negative")
    late = _alerts(backend, test, ev("2025-02-20 09:00", "check_in", "attended"))
    assert late["overdue_check_in"] == ("2025-05-29", 3, None)  # 02-20 + 91 + 7 = 05-29
    on_time = _alerts(backend, test, ev("2025-02-23 09:00", "check_in", "attended"))
    assert "overdue_check_in" not in on_time  # due 06-01: 0 days late
    missed = _alerts(backend, test, ev("2025-05-30 09:00", "check_in", "missed"))
    assert "overdue_check_in" in missed  # a missed check-in is not one attended


@pytest.mark.parametrize("backend", BACKENDS)
def test_recorded_recently_uses_knowledge_time_with_its_value(backend: str) -> None:
    edge = ev("2025-05-20 10:00", "urine_test", "positive", recorded_at="2025-05-25 00:00")
    assert _alerts(backend, *QUIET, edge)["positive_test"] == ("2025-05-20", None, None)
    before = ev("2025-05-20 10:00", "urine_test", "positive", recorded_at="2025-05-24 23:59")
    assert "positive_test" not in _alerts(backend, *QUIET, before)
    bought = ev("2025-05-30 15:00", "controlled_medicine_purchase", value=5.0)
    assert _alerts(backend, *QUIET, bought)["medicine_purchase"] == ("2025-05-30", None, 5.0)
    tomorrow = ev("2025-05-30 15:00", "urine_test", "refused", recorded_at="2025-06-01 08:00")
    assert "refused_test" not in _alerts(backend, *QUIET, tomorrow)  # recorded after as_of


@pytest.mark.parametrize("backend", BACKENDS)
def test_transfer_without_contact_uses_the_catalogs_contact(backend: str) -> None:
    moved = ev("2025-05-10 09:00", "transfer_in")
    alone = _alerts(backend, ev("2025-05-01 09:00", "check_in", "attended"), moved)
    assert alone["transfer_no_worker"] == ("2025-05-10", None, None)
    tested = ev("2025-05-15 09:00", "urine_test", "negative")  # seen: contact in the catalog
    assert "transfer_no_worker" not in _alerts(backend, moved, tested, *QUIET[:1])
    not_home = ev("2025-05-15 09:00", "home_visit", "not_home")  # nobody seen: no contact
    assert "transfer_no_worker" in _alerts(backend, moved, not_home)
    pending = _alerts(backend, *QUIET, person={"worker_id": " Pending "})
    assert pending["transfer_no_worker"] == (None, None, None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cohort_flags_at_their_day_boundaries(backend: str) -> None:
    ending, recent, first = 1, 2, 4
    assert _alerts(backend, *QUIET, person={"program_end": "2025-07-31"})["_cohort"] == ending
    assert _alerts(backend, *QUIET, person={"program_end": "2025-08-01"})["_cohort"] == 0
    assert _alerts(backend, *QUIET, person={"program_start": "2025-03-04"})["_cohort"] == first
    assert _alerts(backend, *QUIET, person={"program_start": "2025-03-03"})["_cohort"] == 0
    came = ev("2025-05-02 09:00", "transfer_in")
    assert _alerts(backend, *QUIET, came)["_cohort"] == recent
    earlier = ev("2025-05-01 09:00", "transfer_in")
    assert _alerts(backend, *QUIET, earlier)["_cohort"] == 0


def _bought(ts: str, value: float, result: str | None = None, **kw: Any) -> dict[str, Any]:
    return ev(ts, "controlled_medicine_purchase", result, value=value, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_medicine_quantity_within_7_and_30_days(backend: str) -> None:
    week = _alerts(backend, *QUIET, _bought("2025-05-25 00:00", 7))  # as_of - 7 days: in
    assert week["medicine_quantity_7d"] == ("2025-05-25", None, 7.0)
    assert "medicine_quantity_7d" not in _alerts(backend, *QUIET, _bought("2025-05-24 23:59", 7))
    assert "medicine_quantity_7d" not in _alerts(backend, *QUIET, _bought("2025-05-30 09:00", 6))
    month = _alerts(backend, *QUIET, _bought("2025-05-02 00:00", 8), _bought("2025-05-20 10:00", 8))
    assert month["medicine_quantity_30d"] == ("2025-05-20", None, 16.0)
    assert "medicine_quantity_7d" not in month and "medicine_sharp_rise" not in month
    early = _alerts(backend, *QUIET, _bought("2025-05-01 23:59", 8), _bought("2025-05-20 10:00", 8))
    assert "medicine_quantity_30d" not in early  # 31 days before: only 8 in the month
    assert "medicine_sharp_rise" not in early  # 8 is not above 3 x 8 / 3
    later = _bought("2025-05-30 09:00", 50, recorded_at="2025-06-01 00:00")
    assert "medicine_quantity_7d" not in _alerts(backend, *QUIET, later)  # known at as_of: no


@pytest.mark.parametrize("backend", BACKENDS)
def test_medicine_at_several_pharmacies(backend: str) -> None:
    three = (
        _bought("2025-05-03 10:00", 1, "tramadol@ph-000001"),
        _bought("2025-05-10 10:00", 1, "codeine_syrup@ ph-000002 "),
        _bought("2025-05-20 10:00", 1, "@ph-000003"),
    )
    assert _alerts(backend, *QUIET, *three)["medicine_pharmacies"] == ("2025-05-20", None, 3.0)
    same = _bought("2025-05-20 10:00", 1, "zolpidem@ph-000001 ")  # ph-000001 again
    assert "medicine_pharmacies" not in _alerts(backend, *QUIET, *three[:2], same)
    unnamed = _bought("2025-05-20 10:00", 1, "tramadol")  # no pharmacy named
    assert "medicine_pharmacies" not in _alerts(backend, *QUIET, *three[:2], unnamed)
    old = _bought("2025-05-01 23:00", 1, "x@ph-000004")  # outside the 30 days
    assert "medicine_pharmacies" not in _alerts(backend, *QUIET, *three[1:], old)


@pytest.mark.parametrize("backend", BACKENDS)
def test_medicine_sharp_rise(backend: str) -> None:
    before = _bought("2025-03-01 10:00", 3)  # 3 in the 90 days before: 1 a month
    rise = _alerts(backend, *QUIET, before, _bought("2025-05-20 10:00", 6))
    assert rise["medicine_sharp_rise"] == ("2025-05-20", None, 6.0)  # 6 > 3 x 1
    assert "medicine_sharp_rise" not in _alerts(
        backend, *QUIET, before, _bought("2025-05-20 10:00", 5)
    )  # under 6
    alone = _alerts(backend, *QUIET, _bought("2025-05-20 10:00", 15))
    assert "medicine_sharp_rise" not in alone  # nothing before: not a rise
    level = _alerts(
        backend, *QUIET, _bought("2025-03-01 10:00", 18), _bought("2025-05-20 10:00", 18)
    )
    assert "medicine_sharp_rise" not in level  # 18 is not above 3 x 6
    edge = _bought("2025-02-01 00:00", 3)  # as_of - 120 days: still the window before
    assert "medicine_sharp_rise" in _alerts(backend, *QUIET, edge, _bought("2025-05-20 10:00", 6))
    gone = _bought("2025-01-31 23:59", 3)  # before the 120 days: nothing before
    assert "medicine_sharp_rise" not in _alerts(
        backend, *QUIET, gone, _bought("2025-05-20 10:00", 6)
    )


def test_split_purchase() -> None:
    from features.contract import split_purchase

    assert split_purchase("codeine_syrup@ph-000007") == ("codeine_syrup", "ph-000007")
    assert split_purchase(" tramadol ") == ("tramadol", None)
    assert split_purchase("@ ph-1 ") == (None, "ph-1")
    assert split_purchase("a@b@ph-2") == ("a@b", "ph-2")
    assert split_purchase(None) == (None, None) and split_purchase("  ") == (None, None)
