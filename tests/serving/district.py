"""A hand-built district with exact dates, for the serving tests.

Two towns of 示例区, three workers; the scoring date is 2025-06-01. Chosen
persons trip each alert rule:

* p-01 (w-1, 东镇): a positive urine test recorded 2025-05-30 -> positive_test;
* p-02 (w-1, 东镇): last attended check-in 2025-03-01 (year 2) -> overdue_check_in;
* p-03 (w-1, 东镇): controlled medicine bought 2025-05-28 -> medicine_purchase;
* p-04 (w-2, 东镇): transferred in 2025-05-20, no worker contact since -> transfer_no_worker;
* p-05 (w-2, 东镇): refused a test recorded 2025-05-31 -> refused_test;
* p-06 (w-3, 西镇): lost contact 2025-04-01 -> not in the cohort, never listed;
* p-07 (w-3, 西镇): agreement ends 2025-07-15 -> cohort agreement_ending;
* p-08 (w-3, 西镇): started 2025-04-01 -> cohort first_90_days;
* p-09 (w-1, 东镇): steady, employed, visited: the quiet one.
"""

from __future__ import annotations

import pandas as pd

from tests.factories import event, events_frame, person, persons_frame

AS_OF = "2025-06-01"
PREVIOUS = "2025-05-31"


def _routine(pid: str, start: str = "2024-06-01", months: int = 12) -> list[dict[str, str]]:
    rows = []
    for m in range(months):
        day = (pd.Timestamp(start) + pd.DateOffset(months=m)).strftime("%Y-%m-%d")
        rows.append(event(f"{pid}-c{m}", f"{day}T09:00:00", "check_in", pid, "attended"))
        rows.append(event(f"{pid}-u{m}", f"{day}T10:00:00", "urine_test", pid, "negative"))
    return rows


def persons() -> pd.DataFrame:
    rows = [
        person(
            person_id="p-01",
            worker_id="w-1",
            town="东镇",
            program_start="2024-06-01",
            program_end="2027-05-31",
            prior_compulsory_detox="2",
        ),
        person(
            person_id="p-02",
            worker_id="w-1",
            town="东镇",
            program_start="2024-03-01",
            program_end="2027-02-28",
        ),
        person(
            person_id="p-03",
            worker_id="w-1",
            town="东镇",
            program_start="2024-06-01",
            program_end="2027-05-31",
        ),
        person(
            person_id="p-04",
            worker_id="w-2",
            town="东镇",
            program_start="2024-06-01",
            program_end="2027-05-31",
        ),
        person(
            person_id="p-05",
            worker_id="w-2",
            town="东镇",
            program_start="2024-06-01",
            program_end="2027-05-31",
            prior_compulsory_detox="3",
        ),
        person(
            person_id="p-06",
            worker_id="w-3",
            town="西镇",
            program_start="2024-06-01",
            program_end="2027-05-31",
        ),
        person(
            person_id="p-07",
            worker_id="w-3",
            town="西镇",
            program_start="2022-07-16",
            program_end="2025-07-15",
        ),
        person(
            person_id="p-08",
            worker_id="w-3",
            town="西镇",
            program_start="2025-04-01",
            program_end="2028-03-31",
        ),
        person(
            person_id="p-09",
            worker_id="w-1",
            town="东镇",
            program_start="2024-06-01",
            program_end="2027-05-31",
            prior_compulsory_detox="0",
        ),
    ]
    return persons_frame(*rows)


def events() -> pd.DataFrame:
    rows: list[dict[str, str]] = []
    for pid in ("p-01", "p-03", "p-04", "p-05", "p-06", "p-09"):
        rows += _routine(pid)
    rows += _routine("p-02", "2024-03-01", 12)
    rows += _routine("p-07", "2024-06-01", 12)
    rows += _routine("p-08", "2025-04-01", 2)
    rows += [
        event(
            "p-01-pos",
            "2025-05-29T10:00:00",
            "urine_test",
            "p-01",
            "positive",
            recorded_at="2025-05-30T09:00:00",
            source="lab",
        ),
        event("p-01-miss", "2025-05-15T09:00:00", "check_in", "p-01", "missed"),
        event(
            "p-03-med",
            "2025-05-28T15:00:00",
            "controlled_medicine_purchase",
            "p-03",
            value="3",
            source="pharmacy",
        ),
        event("p-04-in", "2025-05-20T10:00:00", "transfer_in", "p-04", source="other_district"),
        event("p-05-ref", "2025-05-31T10:00:00", "urine_test", "p-05", "refused", source="lab"),
        event("p-06-lost", "2025-04-01T10:00:00", "lost_contact", "p-06"),
        event("p-09-job", "2025-01-10T09:00:00", "employment_start", "p-09"),
        event("p-09-hv", "2025-05-20T09:00:00", "home_visit", "p-09"),
    ]
    # p-02's routine ends 2025-02; nothing since -> overdue check-in and test.
    return events_frame(*rows)
