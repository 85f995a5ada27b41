"""Exact feature values for hand-built histories, one family at a time."""

from __future__ import annotations

import pandas as pd
import pytest

from features import build_features, load_catalog
from tests.features.history import at, ev, events, persons


def one(evs: pd.DataFrame, as_of: str, **person: object) -> pd.Series:
    return build_features(at(as_of), persons=persons(person), events=evs).iloc[0]


def test_static_values_and_encoding() -> None:
    row = one(
        events(ev("2023-02-01", "home_visit")),
        "2024-03-01",
        first_use_year=None,
        household=None,
        primary_drug="heroin",
    )
    assert row["age"] == 2024 - 1986
    assert (row["sex_M"], row["sex_F"]) == (1, 0)
    assert row["drug_heroin"] == 1 and row["drug_methamphetamine"] == 0
    assert (row["years_of_use"], row["years_of_use_imp"]) == (10, 1)
    assert (row["household_local"], row["household_non_local"], row["household_unknown"]) == (
        0,
        0,
        1,
    )
    assert row["prior_detox"] == 1 and row["prior_detox_imp"] == 0
    assert row["days_in_program"] == (pd.Timestamp("2024-03-01") - pd.Timestamp("2023-01-01")).days
    assert (
        row["days_to_program_end"] == (pd.Timestamp("2025-12-31") - pd.Timestamp("2024-03-01")).days
    )


def test_compliance_windows_event_at_as_of_and_runs() -> None:
    evs = events(
        ev("2023-06-01 09:00", "check_in", "attended"),  # 91 days before as_of
        ev("2023-08-02 09:00", "check_in", "attended"),  # 30 days before (in the 30-day window)
        ev("2023-08-10 09:00", "check_in", "missed"),
        ev("2023-08-20 09:00", "check_in", "missed"),
        ev("2023-09-01 00:00", "check_in", "attended"),  # exactly at as_of: not yet known
    )
    row = one(evs, "2023-09-01")
    assert row["checkins_attended_30d"] == 1
    assert row["checkins_attended_90d"] == 1
    assert row["checkins_attended_180d"] == 2
    assert row["checkins_missed_30d"] == 2 and row["checkins_missed_all"] == 2
    assert row["checkins_missed_in_a_row"] == 2
    assert (row["days_since_contact"], row["days_since_contact_imp"]) == (30, 0)
    later = one(evs, "2023-09-01 00:00:01")
    assert later["checkins_missed_in_a_row"] == 0 and later["days_since_contact"] == 0


def test_testing_late_recorded_result_is_invisible_until_recorded() -> None:
    evs = events(
        ev("2023-05-01 10:00", "urine_test", "negative"),
        ev("2023-06-01 10:00", "urine_test", "positive", recorded_at="2023-06-05 16:00"),
    )
    before = one(evs, "2023-06-05")
    assert before["tests_all"] == 1 and before["tests_positive_all"] == 0
    assert before["last_test_negative"] == 1 and before["days_since_positive_imp"] == 1
    assert before["days_since_positive"] == 3650 and before["days_since_test"] == 35
    after = one(evs, "2023-06-06")
    assert after["tests_all"] == 2 and after["tests_positive_90d"] == 1
    assert after["last_test_positive"] == 1 and after["last_test_none"] == 0
    assert (after["days_since_positive"], after["days_since_positive_imp"]) == (5, 0)


def test_correction_supersedes_only_once_recorded() -> None:
    evs = events(
        ev("2023-03-10 09:00", "check_in", "missed"),
        ev("2023-03-10 09:00", "check_in", "attended", recorded_at="2023-03-20 12:00"),
    )
    seen_before = one(evs, "2023-03-15")
    assert (seen_before["checkins_missed_all"], seen_before["checkins_attended_all"]) == (1, 0)
    seen_after = one(evs, "2023-03-21")
    assert (seen_after["checkins_missed_all"], seen_after["checkins_attended_all"]) == (0, 1)


def test_support_employment_mobility_pharmacy() -> None:
    evs = events(
        ev("2023-03-01 10:00", "home_visit"),
        ev("2023-03-20 10:00", "counselling"),
        ev("2023-03-21 10:00", "peer_education"),
        ev("2023-03-22 10:00", "family_contact"),
        ev("2023-01-10 09:00", "employment_start"),
        ev("2023-02-09 17:00", "employment_end"),
        ev("2023-03-01 09:00", "employment_start"),
        ev("2023-02-01 10:00", "leave_notice", value=5),
        ev("2023-02-15 10:00", "transfer_out"),
        ev("2023-02-20 10:00", "transfer_in"),
        ev("2023-03-25 21:00", "controlled_medicine_purchase", value=2.5),
        ev("2023-03-28 21:00", "controlled_medicine_purchase", value=1),
    )
    row = one(evs, "2023-04-01")
    assert (row["home_visits_30d"], row["home_visits_90d"], row["days_since_home_visit"]) == (
        0,
        1,
        31,
    )
    assert row["counselling_30d"] == 1 and row["peer_education_30d"] == 1
    assert row["family_contacts_all"] == 1
    assert row["employed_now"] == 1
    assert row["days_employed_365d"] == 30 + 31  # Jan 10 - Feb 8 and Mar 1 - Mar 31
    assert (row["transfers_out_all"], row["transfers_in_365d"], row["days_since_transfer_in"]) == (
        1,
        1,
        40,
    )
    assert (row["leave_notices_90d"], row["leave_days_365d"]) == (1, 5.0)
    assert (row["medicine_purchases_30d"], row["medicine_quantity_30d"]) == (2, 3.5)


def test_attendance_trend() -> None:
    evs = events(
        ev("2023-01-05", "check_in", "attended"),
        ev("2023-01-20", "check_in", "attended"),
        ev("2023-02-10", "check_in", "missed"),
        ev("2023-03-10", "check_in", "attended"),
        ev("2023-04-10", "check_in", "attended"),
        ev("2023-04-20", "check_in", "missed"),
    )
    row = one(evs, "2023-05-01")  # last 30 days: 1 of 2 attended; 90 before: 3 of 4
    assert row["attendance_trend"] == pytest.approx(0.5 - 0.75)
    assert row["attendance_trend_imp"] == 0
    empty = one(events(ev("2023-04-10", "check_in", "attended")), "2023-05-01")
    assert (empty["attendance_trend"], empty["attendance_trend_imp"]) == (0.0, 1)


def test_columns_follow_the_catalog_and_are_numeric() -> None:
    frame = build_features(
        at("2023-05-01", "2023-02-01"),
        persons=persons(),
        events=events(ev("2023-01-05", "check_in", "attended")),
    )
    names = [f.name for f in load_catalog().features()]
    assert list(frame.columns) == ["person_id", "as_of", *names]
    assert all(pd.api.types.is_numeric_dtype(frame[n]) for n in names)
    assert not frame[names].isna().any().any()


def test_order_and_index_are_kept_and_unknown_person_is_refused() -> None:
    ps = persons({"person_id": "a"}, {"person_id": "b"})
    evs = events(ev("2023-03-01", "home_visit", person_id="b"))
    ent = pd.DataFrame(
        {
            "person_id": ["b", "a", "b"],
            "as_of": pd.to_datetime(["2023-04-01", "2023-04-01", "2023-02-01"]),
        },
        index=[10, 5, 7],
    )
    frame = build_features(ent, persons=ps, events=evs)
    assert list(frame.index) == [10, 5, 7]
    assert frame["home_visits_all"].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="not in persons"):
        build_features(at("2023-04-01", person_id="zz"), persons=ps, events=evs)


def test_home_visit_results_and_contact() -> None:
    visits = [
        ev("2023-01-20 10:00", "check_in", "attended"),
        ev("2023-02-01 10:00", "home_visit", "met"),
        ev("2023-02-10 10:00", "home_visit", "moving"),
        ev("2023-03-05 10:00", "home_visit", "concern"),
        ev("2023-03-10 10:00", "home_visit", "a free note"),  # uncoded: a visit, still contact
        ev("2023-03-15 10:00", "home_visit", "not_home"),
        ev("2023-03-20 10:00", "home_visit", "not_home"),
        ev("2023-03-25 10:00", "home_visit", "not_home"),
    ]
    row = one(events(*visits), "2023-04-01")
    assert row["home_visits_30d"] == 5 and row["home_visits_all"] == 7
    assert (row["home_visits_not_home_30d"], row["home_visits_not_home_365d"]) == (3, 3)
    assert row["home_visits_not_home_in_a_row"] == 3
    assert (row["home_visits_moving_90d"], row["home_visits_concern_30d"]) == (1, 1)
    assert row["home_visits_concern_90d"] == 1
    assert row["last_home_visit_not_home"] == 1
    assert row["last_home_visit_met"] + row["last_home_visit_none"] == 0
    assert row["days_since_home_visit"] == 7
    # a visit that found nobody at home is not contact: the last is the uncoded visit
    assert (row["days_since_contact"], row["days_since_contact_imp"]) == (22, 0)
    met_again = one(events(*visits, ev("2023-03-28 10:00", "home_visit", "met")), "2023-04-01")
    assert met_again["home_visits_not_home_in_a_row"] == 0
    assert met_again["last_home_visit_met"] == 1 and met_again["days_since_contact"] == 4
    only_not_home = one(events(ev("2023-03-15 10:00", "home_visit", "not_home")), "2023-04-01")
    assert only_not_home["days_since_contact_imp"] == 1
    assert (
        only_not_home["days_since_contact"]
        == (pd.Timestamp("2023-04-01") - pd.Timestamp("2023-01-01")).days
    )
    none = one(events(ev("2023-03-15 10:00", "counselling")), "2023-04-01")
    assert none["last_home_visit_none"] == 1 and none["home_visits_not_home_in_a_row"] == 0


@pytest.mark.parametrize(
    ("marital", "expected"),
    [
        ("divorced", {"divorced": 1}),
        ("single", {"single": 1}),
        (None, {"unknown": 1}),
        ("remarried", {}),  # free text outside the coded values: none of the columns
    ],
)
def test_marital_one_hot_with_unknown(marital: str | None, expected: dict[str, int]) -> None:
    row = one(events(ev("2023-02-01", "counselling")), "2023-04-01", marital=marital)
    for choice in ("single", "married", "divorced", "widowed", "unknown"):
        assert row[f"marital_{choice}"] == expected.get(choice, 0), choice
