"""Responsibility targets (features.targets) against hand-computed values."""

from __future__ import annotations

import pandas as pd
import pytest

from features.targets import TargetConfig, abstinent_3y, against_targets, load_targets
from tests.features.history import ev, events, persons

EAST = {
    "district": "示例区",
    "town": "东镇",
    "execution_rate": 0.75,
    "lost_contact": 2,
    "abstinent_3y": 10,
    "employment_rate": 0.3333,
    "people_per_worker": 3.0,
}


def _verdicts(frame: pd.DataFrame, town: str | None) -> dict[str, tuple[object, object]]:
    rows = frame.loc[frame["town"].fillna("") == (town or "")]
    return {r.kpi: (None if pd.isna(r.target) else r.target, r.met) for r in rows.itertuples()}


def test_defaults_are_the_seeds_targets() -> None:
    previous = [{"district": "示例区", "town": "东镇", "employment_rate": 0.30, "abstinent_3y": 9}]
    got = _verdicts(against_targets(load_targets(), [EAST], previous), "东镇")
    assert got["execution_rate"] == (1.0, False)  # 100 %
    assert got["lost_contact"] == (0, False)  # cleared to zero
    assert got["abstinent_3y"] == (pytest.approx(10.08), False)  # 9 x 1.12; 10 is short
    assert got["employment_rate"] == (pytest.approx(0.318), True)  # 0.30 x 1.06
    assert got["people_per_worker"] == (20, True)  # 1:20


def test_places_override_and_signed_baselines() -> None:
    config = TargetConfig.model_validate(
        {
            "config_version": "t",
            "defaults": load_targets().defaults,
            "places": [
                {"district": "示例区", "targets": {"people_per_worker": {"at_most": 25}}},
                {
                    "district": "示例区",
                    "town": "西镇",
                    "targets": {"execution_rate": {"at_least": 0.95}},
                    "baseline": {"abstinent_3y": 8},
                },
            ],
        }
    )
    west = {**EAST, "town": "西镇", "execution_rate": 0.96, "abstinent_3y": 9}
    total = {**EAST, "town": None, "people_per_worker": 22.0}
    frame = against_targets(config, [EAST, west, total])
    assert _verdicts(frame, "西镇")["execution_rate"] == (0.95, True)
    assert _verdicts(frame, "西镇")["abstinent_3y"] == (pytest.approx(8.96), True)
    assert _verdicts(frame, "西镇")["people_per_worker"] == (25, True)  # the district's
    assert _verdicts(frame, "东镇")["execution_rate"] == (1.0, False)  # not 西镇's
    assert _verdicts(frame, None)["people_per_worker"] == (25, True)  # the district total
    assert _verdicts(frame, "东镇")["abstinent_3y"] == (None, None)  # no baseline: no verdict


def test_a_rule_is_exactly_one_kind() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TargetConfig.model_validate(
            {"config_version": "t", "defaults": {"lost_contact": {"at_most": 0, "growth": 1}}}
        )


def test_abstinent_three_years_by_hand() -> None:
    three = {"program_start": "2022-06-01", "program_end": "2025-05-31"}
    people = [
        {"person_id": f"p-{i:06d}", "town": "东镇" if i <= 6 else "西镇", **three}
        for i in range(1, 12)
    ]
    people[3] |= {"program_start": "2023-06-01"}  # p-000004: a 2-year agreement
    people[4] |= {"program_start": "2022-01-01", "program_end": "2024-12-31"}  # ended earlier

    def e(i: int, ts: str, kind: str, result: str | None = None, **kw: str) -> dict:
        return ev(ts, kind, result, person_id=f"p-{i:06d}", **kw)

    history = events(
        e(2, "2023-01-10 09:00", "urine_test", "positive"),
        e(3, "2022-05-01 09:00", "urine_test", "positive"),  # before the 3 years
        e(6, "2024-03-01 09:00", "urine_test", "refused"),
        e(7, "2025-03-01 09:00", "lost_contact"),
        e(8, "2025-03-01 09:00", "lost_contact"),
        e(8, "2025-04-01 09:00", "contact_restored"),
        e(9, "2024-01-01 09:00", "program_exit", "violation"),
        e(10, "2025-05-31 18:00", "program_exit", "completed"),
        e(11, "2025-05-01 09:00", "urine_test", "positive", recorded_at="2026-01-02 09:00"),
    )
    got = abstinent_3y(persons(*people), history, pd.Timestamp("2026-01-01"))
    assert got.set_index("town")["abstinent_3y"].to_dict() == {"东镇": 2, "西镇": 3}
    later = abstinent_3y(persons(*people), history, pd.Timestamp("2026-01-03"))
    assert later.set_index("town")["abstinent_3y"].to_dict() == {"东镇": 2, "西镇": 2}
    a_year_on = abstinent_3y(persons(*people), history, pd.Timestamp("2026-06-01"))
    assert a_year_on["abstinent_3y"].sum() == 0  # ended more than 12 months before
