"""The model-health page's per-town monitor table (issue 16), and its scope.

The monitored store is the web fixtures' scored district (``site``) with the
rows ``sunflower monitor`` writes (:func:`sunflower.cli_monitor._store`: a
``monitor_runs`` row per date and outcome, every figure in ``monitor_metrics``
by run date, kind, scope, key and metric) put in by hand, so no model is
trained: two relapse passes — 2025-02-01, which stored its own expected figures,
and 2025-06-01, which stored today's expected figures and drift and the
realised figures of the closed 2025-02-01 run — with 西镇 on watch.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from serving.db import monitor_metrics, monitor_runs

JUNE, FEB = date(2025, 6, 1), date(2025, 2, 1)


def _pass(
    conn: sa.Connection, day: date, evidence: list[dict[str, Any]], metrics: list[tuple[Any, ...]]
) -> None:
    new = conn.execute(
        monitor_runs.insert().values(
            as_of=day,
            outcome="relapse",
            model_version="1",
            level="watch" if evidence else "ok",
            created_at=datetime(2025, 6, 1, 7, 0),
            headline=json.dumps({"expected_precision_at_10pct": 0.3}),
            sentences=json.dumps(["复吸模型需要关注。"], ensure_ascii=False),
            evidence=json.dumps(evidence, ensure_ascii=False),
        )
    ).inserted_primary_key
    assert new is not None
    conn.execute(
        monitor_metrics.insert(),
        [
            {"monitor_id": new[0], "run_as_of": d, "kind": k, "scope": s, "key": key,
             "metric": m, "value": v}
            for d, k, s, key, m, v in metrics
        ],
    )  # fmt: skip


def store_monitor(engine: sa.Engine) -> None:
    """Two relapse passes as ``sunflower monitor`` stores them (see the module docstring)."""
    watch = {"level": "watch", "scope": "town", "key": "西镇", "what": "PSI tests_180d",
             "value": 0.4, "threshold": 0.25, "reason": "input shift", "as_of": None}  # fmt: skip
    info = {**watch, "level": "info", "key": "东镇", "what": "PSI checkins_attended_all"}
    with engine.begin() as conn:
        _pass(
            conn,
            FEB,
            [],
            [(FEB, "expected", "town", "东镇", "precision_at_10pct", 0.40),
             (FEB, "expected", "town", "西镇", "precision_at_10pct", 0.30),
             (FEB, "expected", "district", "all", "precision_at_10pct", 0.35)],
        )  # fmt: skip
        _pass(
            conn,
            JUNE,
            [watch, info],
            [(JUNE, "expected", "town", "东镇", "precision_at_10pct", 0.42),
             (JUNE, "expected", "town", "西镇", "precision_at_10pct", 0.25),
             (JUNE, "drift", "town", "西镇", "tests_180d.psi", 0.40),
             (JUNE, "drift", "town", "西镇", "checkins_missed_30d.psi", 0.12),
             (JUNE, "drift", "town", "西镇", "score.psi", 0.90),
             (JUNE, "drift", "town", "东镇", "checkins_attended_all.psi", 0.60),
             (JUNE, "drift", "town", "东镇", "checkins_missed_30d.psi", 0.05),
             (FEB, "realised", "town", "东镇", "precision_at_10pct", 0.50),
             (FEB, "realised", "town", "西镇", "precision_at_10pct", 0.10),
             (FEB, "realised", "group", "sex=male", "precision_at_10pct", 0.2)],
        )  # fmt: skip


@pytest.fixture(scope="module")
def monitored(site: Any) -> Any:
    store_monitor(site.engine)
    return site


def _rows(html: str) -> dict[str, list[str]]:
    """The per-town table's rows: town -> the cells' text."""
    table = re.search(r'<table class="plain monitor-towns">(.*?)</table>', html, re.S)
    if table is None:
        return {}
    out = {}
    for tr in re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</tr>", table.group(1), re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.split(r"</t[hd]>", tr)]
        out[cells[0]] = [c for c in cells[1:] if c]
    return out


def test_the_towns_of_the_latest_run_with_verdict_figures_and_drift(
    monitored: Any, as_user: Any
) -> None:
    page = as_user("admin").get("/model-health")
    assert page.status_code == 200
    assert "<caption>复吸风险：各乡镇（街道）2025-06-01的监测</caption>" in page.text
    assert '<th scope="col">变化最大的输入</th>' in page.text
    rows = _rows(page.text)
    assert rows == {
        "东镇": ["正常", "42%", "50%（2025-02-01的名单）", "+10个百分点", "无明显变化"],
        "西镇": [
            "需要关注",
            "25%",
            "10%（2025-02-01的名单）",
            "-20个百分点",
            "在过去180天内接受检测若干次（稳定性指数0.40）",
        ],
    }  # a total since records began and the score are not inputs that moved
    assert "tests_180d" not in page.text and "sex=male" not in page.text  # no code words
    english = _rows(as_user("owner").get("/model-health?lang=en").text)
    assert english["西镇"][0] == "watch" and english["西镇"][2] == "10% (list of 2025-02-01)"
    assert english["西镇"][4] == "several drug tests in the last 180 days (PSI 0.40)"


def test_supervisors_see_their_scope_and_workers_no_towns(monitored: Any, as_user: Any) -> None:
    assert set(_rows(as_user("sup_district").get("/model-health").text)) == {"东镇", "西镇"}
    assert set(_rows(as_user("sup_east").get("/model-health").text)) == {"东镇"}
    town = as_user("sup_east").get("/town")
    assert town.status_code == 200 and set(_rows(town.text)) == {"东镇"}
    worker = as_user("w1").get("/model-health")
    assert worker.status_code == 200 and _rows(worker.text) == {}
    assert "复吸模型" in worker.text  # the district-wide verdict is still there
