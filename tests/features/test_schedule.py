"""Due lists (features.schedule) on hand-built histories with exact dates.

``p-1`` starts on 2023-01-01, so on 2025-06-01 it is in year 3 (day 882): check-ins,
drug tests and home visits every 91 days, hair tests every 183; grace 7 days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import Session, get_historical_features
from features.catalog import load_catalog
from features.schedule import due_list, escalation, interval_days
from tests.features.history import ev, events, persons

DAY = "2025-06-01"


def _rows(*rows: dict[str, object], person: dict[str, object] | None = None, day: str = DAY):
    got = due_list(persons(person or {}), events(*rows), pd.Timestamp(day))
    return {r.duty: (str(r.due.date()), int(r.days_late), r.status) for r in got.itertuples()}


def test_interval_changes_at_each_programme_period() -> None:
    served = np.array([0, 182, 183, 364, 365, 729, 730, 2000])
    assert interval_days((14, 30, 61, 91), served).tolist() == [14, 14, 30, 30, 61, 61, 91, 91]


def test_one_schedule_feeds_the_alerts() -> None:
    cat = load_catalog()
    for alert in cat.alerts:
        if alert.rule == "overdue":
            assert alert.schedule is not None
            found = cat.schedule(alert.schedule)
            assert (alert.events, alert.every_days) == (found.events, found.every_days)
    assert cat.schedule("check_in").every_days == (14, 30, 61, 91)
    assert cat.schedule("drug_test").every_days == (30, 30, 61, 91)
    assert cat.schedule("hair_test").every_days == (183, 183, 183, 183)


def test_restating_a_schedule_in_an_alert_is_refused() -> None:
    from features.catalog import Catalog, load_catalog

    raw = load_catalog().model_dump(by_alias=True)
    assert Catalog.model_validate(raw) == load_catalog()  # a dump reads back the same
    raw["alerts"][0]["every_days"] = (7, 30, 61, 91)  # a second schedule in the alert
    with pytest.raises(ValueError, match="does not restate"):
        Catalog.model_validate(raw)


def test_escalated_overdue_due_and_not_yet() -> None:
    quiet = (
        ev("2025-05-20 10:00", "urine_test", "negative"),
        ev("2025-05-20 11:00", "home_visit", "met"),
        ev("2025-05-01 10:00", "hair_test", "negative"),
    )
    got = _rows(ev("2025-02-20 09:00", "check_in", "attended"), *quiet)
    assert got == {"check_in": ("2025-05-22", 10, "escalated")}  # 02-20 + 91
    assert _rows(ev("2025-02-23 09:00", "check_in", "attended"), *quiet) == {
        "check_in": ("2025-05-25", 7, "overdue")  # 7 days late: still in the grace
    }
    assert _rows(ev("2025-03-05 09:00", "check_in", "attended"), *quiet) == {
        "check_in": ("2025-06-04", -3, "due")
    }
    assert _rows(ev("2025-03-08 09:00", "check_in", "attended"), *quiet) == {
        "check_in": ("2025-06-07", -6, "due")  # the seventh day of the week
    }
    assert _rows(ev("2025-03-09 09:00", "check_in", "attended"), *quiet) == {}  # 06-08


def test_never_done_counts_from_the_programme_start_in_year_one() -> None:
    start = {"program_start": "2025-03-01", "program_end": "2028-02-29"}  # day 92 on 06-01
    got = _rows(person=start)
    assert got["check_in"] == ("2025-03-15", 78, "escalated")  # every 14 days in months 1-6
    assert got["drug_test"] == ("2025-03-31", 62, "escalated")
    assert got["home_visit"] == ("2025-03-31", 62, "escalated")
    assert "hair_test" not in got  # due 2025-08-31


def test_a_due_day_after_the_planned_end_is_not_listed() -> None:
    ending = {"program_end": "2025-06-03"}
    got = _rows(ev("2025-03-05 09:00", "check_in", "attended"), person=ending)
    assert "check_in" not in got  # due 06-04, the agreement ends 06-03


def test_knowledge_time_and_corrections() -> None:
    first = ev("2025-02-20 09:00", "check_in", "attended")
    wrong = ev("2025-05-20 09:00", "check_in", "attended")
    fixed = ev("2025-05-20 09:00", "check_in", "missed", recorded_at="2025-05-25 08:00")
    assert _rows(first, wrong, fixed)["check_in"][2] == "escalated"  # only 02-20 attended
    assert "check_in" not in _rows(first, wrong, fixed, day="2025-05-25")  # fix unknown yet
    late = ev("2025-05-30 09:00", "check_in", "attended", recorded_at="2025-06-01 09:00")
    assert _rows(first, late)["check_in"][2] == "escalated"  # recorded after as_of
    not_home = ev("2025-05-20 11:00", "home_visit", "not_home")
    assert _rows(not_home)["home_visit"][2] == "escalated"  # nobody seen: not a visit


def test_escalated_rows_are_exactly_the_engines_overdue_alerts() -> None:
    rng = np.random.default_rng(7)
    people, rows = [], []
    for i in range(40):
        pid = f"p-{i:06d}"
        start = pd.Timestamp("2022-06-01") + pd.Timedelta(days=int(rng.integers(0, 1000)))
        people.append(
            {
                "person_id": pid,
                "worker_id": f"w-{i % 3}",
                "program_start": str(start.date()),
                "program_end": str((start + pd.Timedelta(days=1095)).date()),
            }
        )
        for _ in range(int(rng.integers(0, 6))):
            ts = pd.Timestamp(DAY) - pd.Timedelta(hours=int(rng.integers(1, 24 * 200)))
            kind = rng.choice(["check_in", "urine_test", "hair_test", "home_visit"])
            result = {"check_in": rng.choice(["attended", "missed"]), "home_visit": "met"}.get(
                str(kind), "negative"
            )
            rows.append(ev(str(ts), str(kind), str(result), person_id=pid))
    frame_p, frame_e = persons(*people), events(*rows)
    on = (frame_p["program_start"] <= pd.Timestamp(DAY)) & (
        frame_p["program_end"] >= pd.Timestamp(DAY)
    )
    frame_p = frame_p.loc[on].reset_index(drop=True)
    due = due_list(frame_p, frame_e, pd.Timestamp(DAY))
    grace = load_catalog().alert_settings.grace_days
    cat = load_catalog()
    duty_of = {a.name: a.schedule for a in cat.alerts if a.rule == "overdue"}
    entities = pd.DataFrame({"person_id": frame_p["person_id"], "as_of": pd.Timestamp(DAY)})
    with Session.open(frame_p, frame_e) as session:
        got = get_historical_features(session, entities, alerts=True, backend="array")
    assert got.alerts is not None
    want = {
        (str(frame_p["person_id"][r]), duty_of[k], int(d))
        for r, k, d in zip(got.alerts.row, got.alerts.kind, got.alerts.days, strict=True)
        if k in duty_of
    }
    escalated = due.loc[due["status"] == "escalated"]
    mine = {
        (r.person_id, r.duty, int(r.days_late) - grace)
        for r in escalated.itertuples()
        if r.duty in duty_of.values()
    }
    assert want and mine == want


def test_escalation_counts_per_worker() -> None:
    a = {"person_id": "p-000001", "worker_id": "w-1"}
    b = {"person_id": "p-000002", "worker_id": "w-2", "program_start": "2025-03-01"}
    due = due_list(
        persons(a, b),
        events(ev("2025-03-05 09:00", "check_in", "attended", person_id="p-000001")),
        pd.Timestamp(DAY),
    )
    counts = escalation(due).set_index("worker_id")
    assert counts.loc["w-2", ["escalated", "overdue", "due"]].tolist() == [3, 0, 0]
    assert counts.loc["w-1", ["escalated", "overdue", "due"]].tolist() == [3, 0, 1]
    assert list(counts.index) == ["w-1", "w-2"]  # ties: by worker
