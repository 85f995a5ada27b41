"""Placement-base subsidy eligibility (features.placement) on hand-computed cases.

As of 2026-01-01 the rolling window is [2023-01-01, 2026-01-01); cost 1,800 yuan per
insured month (base-D: its own 2,000), half of it subsidised; 5 people insured at
least 12 months each earn 100,000 yuan once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.placement import (
    PlacementConfig,
    eligibility,
    load_placement_config,
    write_placement_config,
)
from tests.features.history import ev, events

AS_OF = "2026-01-01"
CONFIG = PlacementConfig.model_validate(
    {
        "config_version": "test",
        "bases": [
            {"id": "base-A", "name": "基地A", "district": "示例区", "town": "东镇"},
            {"id": "base-B", "name": "基地B", "district": "示例区", "town": "东镇"},
            {"id": "base-C", "name": "基地C", "district": "示例区", "town": "西镇"},
            {
                "id": "base-D",
                "name": "基地D",
                "district": "示例区",
                "town": "西镇",
                "lump_sum_paid_on": "2025-06-01",
                "monthly_insurance_cost_yuan": 2000,
            },
            {"id": "base-E", "name": "基地E", "district": "示例区", "town": "西镇"},
        ],
    }
)


def placed(pid: int, base: str, ts: str, months: float | None, **kw: str) -> dict[str, object]:
    return ev(ts, "employment_start", base, value=months, person_id=f"p-{pid:06d}", **kw)


def _history() -> pd.DataFrame:
    rows = [placed(i, "base-A", "2024-03-01 09:00", 12) for i in range(1, 6)]
    rows.append(placed(1, "base-A", "2025-06-01 09:00", 3))  # placed again: months add up
    rows += [placed(i, "base-B", "2024-03-01 09:00", 12) for i in range(6, 10)]
    rows.append(placed(10, "base-B", "2024-03-01 09:00", 6))
    # the base's later reports of p-000010: 11 months known on 2025-02-01, 12 after as_of
    rows.append(placed(10, "base-B", "2024-03-01 09:00", 11, recorded_at="2025-02-01 10:00"))
    rows.append(placed(10, "base-B", "2024-03-01 09:00", 12, recorded_at="2026-01-01 08:00"))
    rows += [placed(i, "base-C", "2023-01-01 00:00", 24) for i in range(11, 15)]  # inside
    rows.append(placed(15, "base-C", "2022-12-31 23:59", 24))  # one minute too early
    rows += [placed(i, "base-D", "2024-01-01 09:00", 12) for i in range(16, 21)]
    rows.append(placed(21, "base-Z", "2025-01-01 09:00", 5))  # not in the registry
    rows.append(ev("2025-01-01 09:00", "employment_start", person_id="p-000022"))  # elsewhere
    rows.append(placed(23, "base-E", "2025-12-31 09:00", None))  # no months reported yet
    return events(*rows)


def _by_base() -> pd.DataFrame:
    return eligibility(CONFIG, _history(), pd.Timestamp(AS_OF)).bases.set_index("base_id")


def test_exactly_five_insured_a_year_earn_the_lump_sum() -> None:
    a = _by_base().loc["base-A"]
    assert (a.placed, a.qualifying, a.insured_months) == (5, 5, 63.0)
    assert a.eligible and a.lump_sum_due_yuan == 100_000
    assert a.insurance_subsidy_yuan == pytest.approx(0.5 * 63 * 1800)  # 56,700
    assert a.total_due_yuan == pytest.approx(156_700)


def test_a_person_insured_eleven_months_does_not_qualify() -> None:
    b = _by_base().loc["base-B"]
    assert (b.placed, b.qualifying, b.insured_months) == (5, 4, 59.0)  # 11 known on as_of
    assert not b.eligible and b.lump_sum_due_yuan == 0
    assert b.insurance_subsidy_yuan == pytest.approx(0.5 * 59 * 1800)  # 53,100


def test_placements_outside_the_three_year_window() -> None:
    c = _by_base().loc["base-C"]
    assert (c.placed, c.qualifying) == (4, 4)  # 2023-01-01 in, 2022-12-31 out
    assert not c.eligible and c.insurance_subsidy_yuan == pytest.approx(0.5 * 96 * 1800)
    later = eligibility(CONFIG, _history(), pd.Timestamp("2026-01-02")).bases
    assert later.set_index("base_id").loc["base-C", "placed"] == 0  # a day on: all four left


def test_paid_once_never_again_and_own_cost() -> None:
    d = _by_base().loc["base-D"]
    assert d.eligible and d.lump_sum_due_yuan == 0  # paid on 2025-06-01
    assert d.insurance_subsidy_yuan == pytest.approx(0.5 * 60 * 2000)
    before = eligibility(CONFIG, _history(), pd.Timestamp("2025-06-01")).bases
    assert before.set_index("base_id").loc["base-D", "lump_sum_due_yuan"] == 100_000


def test_unknown_base_listed_without_money_and_other_jobs_ignored() -> None:
    got = _by_base()
    z = got.loc["base-Z"]
    assert not z.registered and z.placed == 1 and z.total_due_yuan == 0
    e = got.loc["base-E"]
    assert (e.placed, e.qualifying, e.insurance_subsidy_yuan) == (1, 0, 0.0)
    people = eligibility(CONFIG, _history(), pd.Timestamp(AS_OF)).people
    assert "p-000022" not in set(people["person_id"])
    assert people.loc[people["person_id"] == "p-000001", "placements"].tolist() == [2]


def test_config_files_round_trip_and_reject_bad_registries(tmp_path: Path) -> None:
    path = tmp_path / "placement.yaml"
    write_placement_config(CONFIG, path)
    assert load_placement_config(path) == CONFIG
    assert load_placement_config().bases == ()  # the shipped file lists none
    with pytest.raises(ValueError, match="unique"):
        PlacementConfig.model_validate(
            {"config_version": "x", "bases": [CONFIG.bases[0], CONFIG.bases[0]]}
        )
    with pytest.raises(ValueError):
        PlacementConfig.model_validate(
            {
                "config_version": "x",
                "bases": [{"id": "a/b", "name": "n", "district": "d", "town": "t"}],
            }  # fmt: skip
        )


def test_no_bases_and_no_placements() -> None:
    empty = PlacementConfig.model_validate({"config_version": "x"})
    got = eligibility(empty, events(ev("2025-01-01 09:00", "check_in", "attended")), AS_OF)
    assert got.bases.empty and got.people.empty
    got = eligibility(CONFIG, events(ev("2025-01-01 09:00", "check_in", "attended")), AS_OF)
    assert got.bases["placed"].tolist() == [0] * 5 and not got.bases["eligible"].any()


def test_ingest_installs_the_folders_placement_bases(tmp_path: Path, monkeypatch) -> None:
    import shutil

    from typer.testing import CliRunner

    from features.config import home_config_dir
    from sunflower.cli import app
    from tests.features.test_ingest import EXAMPLES

    folder = tmp_path / "district"
    shutil.copytree(EXAMPLES, folder)
    write_placement_config(CONFIG, folder / "placement.yaml")
    monkeypatch.setenv("SUNFLOWER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SUNFLOWER_DATABASE_URL", raising=False)
    monkeypatch.delenv("SUNFLOWER_PLACEMENT", raising=False)
    result = CliRunner().invoke(app, ["ingest", str(folder)])
    assert result.exit_code == 0, result.output
    assert "placement bases: 5 installed" in result.output
    assert load_placement_config() == CONFIG
    assert (home_config_dir() / "placement.yaml").exists()
    (folder / "placement.yaml").write_text("config_version: x\nbases: [{id: a/b}]\n", "utf-8")
    bad = CliRunner().invoke(app, ["ingest", str(folder)])
    assert bad.exit_code == 1 and "validation error" in bad.output  # nothing stored first
