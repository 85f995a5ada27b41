"""Cohort at as_of (knowledge time) and labels with censoring, exact dates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features import build_cohort
from features.config import ConsecutiveRule, DerivedRule, load_label_config
from features.jobs import panel_dates, run_features_job
from features.labels import build_labels
from tests.features.history import at, ev, events, persons

SNAPSHOT = "2025-06-01"


def status(evs: pd.DataFrame, *dates: str) -> list[str]:
    return build_cohort(at(*dates), persons=persons(), events=evs)["status"].tolist()


def labels(evs: pd.DataFrame, *dates: str, outcome: str = "relapse", **kw: object) -> list:
    frame = build_labels(
        at(*dates),
        persons=persons(),
        events=evs,
        outcome=outcome,  # type: ignore[arg-type]
        observed_until=kw.pop("observed_until", SNAPSHOT),
        **kw,
    )  # type: ignore[arg-type]
    return [None if pd.isna(x) else int(x) for x in frame["label"]]


def test_cohort_lost_restored_transfer_exit() -> None:
    evs = events(
        ev("2023-03-01", "lost_contact", recorded_at="2023-03-03"),
        ev("2023-04-01", "contact_restored"),
        ev("2023-06-01", "transfer_out"),
        ev("2023-06-10", "transfer_in"),
        ev("2023-09-01", "program_exit", "custody"),
    )
    got = status(
        evs,
        "2022-12-31",
        "2023-03-02",
        "2023-03-04",
        "2023-04-02",
        "2023-06-05",
        "2023-06-11",
        "2023-09-02",
        "2026-01-02",
    )
    assert got == [
        "not_started",
        "active",
        "lost_contact",
        "active",
        "transferred_out",
        "active",
        "custody",
        "custody",
    ]
    assert status(events(), "2026-01-01", "2025-12-31") == ["ended", "active"]


def test_relapse_window_refused_and_boundaries() -> None:
    evs = events(
        ev("2023-05-01", "urine_test", "refused"), ev("2023-08-01", "urine_test", "positive")
    )
    # window [as_of, as_of + 90 days): the refusal counts on its own day only; from 05-02
    # the window ends 07-31, and from 05-04 it reaches the positive of 08-01
    assert labels(evs, "2023-05-01", "2023-05-02", "2023-05-04", "2023-08-02") == [1, 0, 1, 0]
    assert labels(evs, "2023-01-31") == [0]  # the window ends at 2023-05-01 00:00, exclusive


def test_exits_are_competing_events_and_cutoff_windows_are_unknown_whatever_happened() -> None:
    completed = events(ev("2023-04-01", "program_exit", "completed"))
    assert labels(completed, "2023-03-01") == [0]  # exit ends the window: competing, not unknown
    evs2 = events(
        ev("2023-03-10", "urine_test", "positive"), ev("2023-04-01", "program_exit", "violation")
    )
    assert labels(evs2, "2023-03-01") == [1]  # outcome before exit counts
    after = events(
        ev("2023-04-01", "program_exit", "custody"), ev("2023-04-10", "urine_test", "positive")
    )
    assert labels(after, "2023-03-01") == [0]  # an outcome after the exit does not
    # the window [2025-05-01, 2025-07-30) ends after the snapshot 2025-06-01: unknown,
    # with or without a positive inside its observed part (no selection on the outcome)
    assert labels(events(), "2025-05-01") == [None]
    assert labels(events(ev("2025-05-10", "urine_test", "positive")), "2025-05-01") == [None]
    out = events(ev("2023-03-20", "transfer_out"))
    assert labels(out, "2023-03-01") == [0]
    back = events(ev("2023-03-20", "transfer_out"), ev("2023-03-25", "transfer_in"))
    assert labels(back, "2023-03-01") == [0]
    pos_back = events(*back.to_dict("records"), ev("2023-04-20", "urine_test", "positive"))
    assert labels(pos_back, "2023-03-01") == [1]


def test_window_ends_at_the_planned_end_known_at_as_of() -> None:
    # planned end 2025-12-31: from 2025-10-15 the window is [10-15, 2026-01-01)
    late = events(ev("2025-12-31 23:00", "urine_test", "positive"))
    beyond = events(ev("2026-01-01", "urine_test", "positive"))
    snap = {"observed_until": "2026-06-01"}
    assert labels(late, "2025-10-15", **snap) == [1]
    assert labels(beyond, "2025-10-15", **snap) == [0]  # after the agreement: not this window
    assert labels(events(), "2025-10-15", **snap) == [0]
    # the same window is still unknown while the snapshot has not reached its end
    assert labels(late, "2025-10-15", observed_until="2025-12-31") == [None]
    cfg = load_label_config()
    drop = cfg.model_copy(
        update={"censoring": cfg.censoring.model_copy(update={"planned_end": "drop"})}
    )
    assert labels(late, "2025-10-15", config=drop, **snap) == [None]
    assert labels(late, "2025-10-04", config=drop, **snap) == [None]  # ends 2026-01-02
    assert labels(late, "2025-10-03", config=drop, **snap) == [1]  # ends 2026-01-01 exactly
    assert labels(events(), "2025-09-01", config=drop, **snap) == [0]  # ends 11-30


def _consecutive(k: int = 2) -> object:
    cfg = load_label_config()
    rel = cfg.outcomes["relapse"]
    rule = ConsecutiveRule(enabled=True, interval_days=7, k=k)
    return cfg.model_copy(
        update={
            "outcomes": {**cfg.outcomes, "relapse": rel.model_copy(update={"consecutive": rule})}
        }
    )


def test_k_consecutive_weeks_positive_or_missing() -> None:
    cfg = _consecutive(k=2)
    weekly = (
        [f"2023-03-{d:02d}" for d in (2, 9, 16, 23, 30)]
        + [f"2023-04-{d:02d}" for d in (6, 13, 20, 27)]
        + [f"2023-05-{d:02d}" for d in (4, 11, 18, 25)]
    )
    clean = events(*(ev(d, "urine_test", "negative") for d in weekly))
    assert labels(clean, "2023-03-01", config=cfg) == [0]
    one_pos = events(*(ev(d, "urine_test", "positive" if d == "2023-03-16" else "negative")
                       for d in weekly))  # fmt: skip
    assert labels(one_pos, "2023-03-01", config=cfg) == [0]  # one bad week is not two
    # weeks 3 (positive) and 4 (no test) in a row
    gap = events(*(ev(d, "urine_test", "positive" if d == "2023-03-16" else "negative")
                   for d in weekly if d != "2023-03-23"))  # fmt: skip
    assert labels(gap, "2023-03-01", config=cfg) == [1]
    # missing weeks after a custody exit are not counted: the exit ends observation
    exit_ = events(ev("2023-03-02", "urine_test", "negative"),
                   ev("2023-03-09", "program_exit", "custody"))  # fmt: skip
    assert labels(exit_, "2023-03-01", config=cfg) == [0]
    # and missing weeks after the planned end do not exist
    days = ("2025-12-03", "2025-12-10", "2025-12-17", "2025-12-24")
    short = events(*(ev(d, "urine_test", "negative") for d in days))
    assert labels(short, "2025-12-01", config=cfg, observed_until="2026-06-01") == [0]


def test_not_in_cohort_is_unknown_and_late_record_counts_for_labels() -> None:
    evs = events(
        ev("2023-02-01", "lost_contact"),
        ev("2023-06-01", "urine_test", "positive", recorded_at="2023-07-01"),
    )
    assert labels(evs, "2023-03-01") == [None]
    assert labels(
        events(ev("2023-06-01", "urine_test", "positive", recorded_at="2023-07-01")), "2023-05-01"
    ) == [1]


def test_loss_of_contact_recorded_and_derived() -> None:
    assert labels(
        events(ev("2023-04-01", "lost_contact")), "2023-03-01", outcome="loss_of_contact"
    ) == [1]
    cfg = load_label_config()
    derived = cfg.model_copy(
        update={
            "outcomes": {
                **cfg.outcomes,
                "loss_of_contact": cfg.outcomes["loss_of_contact"].model_copy(
                    update={"derived": DerivedRule(enabled=True)}
                ),
            }
        }
    )
    regular = events(
        *(ev(f"2023-{m:02d}-{d:02d}", "check_in", "attended") for m in (3, 4, 5) for d in (5, 25))
    )
    assert labels(regular, "2023-03-01", outcome="loss_of_contact", config=derived) == [0]
    two_missed = events(
        ev("2023-03-05", "check_in", "attended"),
        ev("2023-03-20", "check_in", "missed"),
        ev("2023-04-02", "check_in", "missed"),
        *(ev(f"2023-0{m}-10", "home_visit") for m in (4, 5)),
    )
    assert labels(two_missed, "2023-03-01", outcome="loss_of_contact", config=derived) == [1]
    silent = events(ev("2023-03-05", "check_in", "attended"))
    assert labels(silent, "2023-03-01", outcome="loss_of_contact", config=derived) == [1]


def test_panel_job_writes_parquet_and_manifest(tmp_path: Path) -> None:
    ps = persons({"person_id": "a"}, {"person_id": "b", "program_start": "2023-06-15"})
    evs = events(
        ev("2023-03-10", "urine_test", "positive", person_id="a"),
        ev("2023-07-01", "check_in", "attended", person_id="b"),
        ev("2024-06-01", "home_visit", person_id="a"),
    )
    m = run_features_job(ps, evs, panel=("2023-01-01", "2023-12-31", "3M"), out=tmp_path)
    frame = pd.read_parquet(tmp_path / "features.parquet")
    assert m["rows_by_as_of"] == {
        "2023-01-01": 1,
        "2023-04-01": 1,
        "2023-07-01": 2,
        "2023-10-01": 2,
    }
    assert len(frame) == m["rows"] == 6
    assert m["label_rates"]["relapse"] == {"known": 6, "positive": 1, "rate": 1 / 6}
    assert {"catalog_version", "label_config_version", "data"} <= set(m)
    assert (tmp_path / "manifest.json").exists()
    assert [str(d.date()) for d in panel_dates("2024-01-31", "2024-04-30", "1M")] == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-30",
    ]
