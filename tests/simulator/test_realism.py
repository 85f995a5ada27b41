"""The realism report lands in the documented bands."""

from __future__ import annotations

import pytest

from simulator import realism_report
from simulator.config import load_config

pytestmark = pytest.mark.xdist_group("simulator_district")


def test_every_figure_is_inside_its_band(district):
    out, _ = district
    report = realism_report(out)
    assert set(report) == set(load_config().report.model_dump())
    assert report.all_inside, f"\n{report}"
    assert "relapse_12m" in str(report)


def test_worker_ratio_is_about_one_to_twenty(district):
    report = realism_report(district[0])
    assert 17 <= report["worker_ratio"]["value"] <= 25
