"""Duty pages over HTTP: a worker's due list, a town's and a district's duties view."""

from __future__ import annotations

import io
from pathlib import Path

import sqlalchemy as sa
from openpyxl import load_workbook

from features.ingest import ingest_frames
from tests.factories import event, events_frame


def test_worker_sees_their_due_list_in_both_languages(as_user, site):
    client = as_user("w1")
    r = client.get("/my-list/due")
    assert r.status_code == 200 and "本周到期与逾期事项" in r.text
    assert "p-02" in r.text and "已升级" in r.text and "p-06" not in r.text
    en = client.get("/my-list/due?lang=en")
    assert "Due this week and overdue" in en.text and "escalated" in en.text
    assert client.get("/caseload/w-2/due").status_code == 404  # another caseload
    assert 'href="/my-list/due"' in client.get("/my-list").text  # in the navigation


def test_town_duties_view(as_user, site):
    client = as_user("sup_east")
    r = client.get("/town/duties")
    assert r.status_code == 200
    for part in ("目标责任书完成情况", "执行率", "脱管人数", "戒断三年未复吸人数", "逾期升级",
                 "特殊药品销售追踪预警", "p-03", "关注", "就业安置基地补贴"):  # fmt: skip
        assert part in r.text, part
    assert client.get("/town/duties?town=西镇").status_code == 404
    assert 'href="/town/duties' in client.get("/town").text
    en = client.get("/town/duties?lang=en")
    assert "Controlled-medicine warnings" in en.text and "Overdue escalation" in en.text
    with site.engine.connect() as conn:
        actions = set(conn.execute(sa.text("SELECT action FROM audit_log")).scalars())
    assert "web_duties" in actions


def test_district_duties_view_lists_every_town_and_the_total(as_user):
    client = as_user("sup_district")
    r = client.get("/town/duties")
    assert r.status_code == 200 and "东镇" in r.text and "西镇" in r.text and "全区合计" in r.text
    assert "逾期升级" not in r.text  # per town only
    assert as_user("w1").get("/town/duties").status_code == 403


def test_bases_on_the_page_and_exported(as_user, site, tmp_path: Path, monkeypatch):
    client = as_user("sup_east")
    assert client.get("/town/bases.xlsx").status_code == 404  # none registered yet
    registry = tmp_path / "placement.yaml"
    registry.write_text(
        "config_version: t\nbases:\n"
        "  - {id: base-01-A, name: 基地A, district: 示例区, town: 东镇}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SUNFLOWER_PLACEMENT", str(registry))
    placed = [
        event(f"pl-{p}", "2024-07-01T09:00:00", "employment_start", p, "base-01-A", value="12")
        for p in ("p-01", "p-03", "p-04", "p-05", "p-09")
    ]
    assert ingest_frames(site.engine, None, events_frame(*placed)).ok
    r = client.get("/town/duties")
    assert "基地A" in r.text and "154,000" in r.text  # 100,000 + 0.5 x 60 months x 1,800
    xlsx = client.get("/town/bases.xlsx")
    assert xlsx.status_code == 200
    rows = list(load_workbook(io.BytesIO(xlsx.content)).active.values)
    assert rows[0][0] == "base_id" and rows[1][0] == "base-01-A" and rows[1][-1] == 154000
    csv = client.get("/town/bases.csv")
    assert csv.status_code == 200 and "base-01-A" in csv.text
    assert client.get("/town/bases.pdf").status_code == 404


def test_town_and_district_views_show_targets_and_escalation(as_user):
    town = as_user("sup_east").get("/town").text
    assert "逾期升级" in town and "已升级" in town  # p-02's overdue check-in and test (w-1)
    assert 'href="/caseload/w-1/due"' in town
    assert "各项指标均达到目标" in town  # 东镇: 100 %, none lost, 3 per worker
    district = as_user("sup_district").get("/town").text
    assert "未达目标" in district
    west = as_user("admin").get("/town?district=示例区&town=西镇").text
    assert "未达目标" in west and "执行率" in west and "脱管人数" in west  # p-06 lost
