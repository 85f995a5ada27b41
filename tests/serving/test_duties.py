"""Due lists, medicine warnings, placement bases and targets over the API (issue 17).

The hand-built district of :mod:`tests.serving.district` scored on 2025-06-01: p-02's
last check-in and test were on 2025-02-01 (year 2: due every 61 days), p-03 bought
controlled medicine on 2025-05-28.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from features.ingest import ingest_frames
from serving.api.schemas import BaseReport, DueList, MedicineWarnings, Targets
from tests.factories import event, events_frame
from tests.serving.conftest import auth

URL = "/api/v1"


def test_worker_due_list_escalates_exactly_the_overdue_alerts(api, scored):
    h = auth(scored.tokens, "w1")
    body = api.get(f"{URL}/due-lists/me", headers=h).json()
    DueList.model_validate(body)
    assert body["scope"] == "worker:w-1"
    escalated = {(i["person_id"], i["duty"]) for i in body["items"] if i["status"] == "escalated"}
    assert ("p-02", "check_in") in escalated and ("p-02", "drug_test") in escalated
    p02 = next(i for i in body["items"] if (i["person_id"], i["duty"]) == ("p-02", "check_in"))
    alert = api.get(f"{URL}/persons/p-02", headers=h).json()["alerts"]
    overdue = next(a for a in alert if a["kind"] == "overdue_check_in")
    assert str(p02["days_late"] - 7) in overdue["zh"]  # the alert's days = late - grace
    assert {i["worker_id"] for i in body["items"]} == {"w-1"}
    assert sum(body["counts"].values()) == len(body["items"])


def test_due_lists_keep_to_the_scope(api, scored):
    w1 = auth(scored.tokens, "w1")
    assert api.get(f"{URL}/due-lists/workers/w-2", headers=w1).status_code == 404
    sup = auth(scored.tokens, "sup_east")
    town = api.get(f"{URL}/due-lists/districts/示例区/towns/东镇", headers=sup).json()
    assert {i["worker_id"] for i in town["items"]} == {"w-1", "w-2"}
    assert api.get(f"{URL}/due-lists/districts/示例区/towns/西镇", headers=sup).status_code == 404
    owner = auth(scored.tokens, "owner")
    assert api.get(f"{URL}/due-lists/workers/w-1", headers=owner).status_code == 403


def test_medicine_warnings_are_graded(api, scored):
    sup = auth(scored.tokens, "sup_east")
    body = api.get(f"{URL}/medicine-warnings/districts/示例区/towns/东镇", headers=sup).json()
    MedicineWarnings.model_validate(body)
    [p03] = body["people"]
    assert (p03["person_id"], p03["level"]) == ("p-03", 1)
    assert [a["kind"] for a in p03["alerts"]] == ["medicine_purchase"]
    assert p03["purchases"][0]["quantity"] == 3.0


def test_targets_against_the_seeds_defaults(api, scored):
    sup = auth(scored.tokens, "sup_district")
    body = api.get(f"{URL}/targets/districts/示例区", headers=sup).json()
    Targets.model_validate(body)
    rows = {(r["town"], r["kpi"]): r for r in body["rows"]}
    east = rows[("东镇", "lost_contact")]
    assert (east["rule"], east["target"]) == ("at_most", 0.0)
    west = rows[("西镇", "lost_contact")]  # p-06 lost contact
    assert (west["value"], west["met"]) == (1.0, False)
    total = rows[(None, "lost_contact")]
    assert total["value"] == east["value"] + west["value"]
    growth = rows[("东镇", "employment_rate")]
    assert growth["rule"] == "growth" and growth["met"] is None  # no run a year before
    east_only = auth(scored.tokens, "sup_east")
    assert api.get(f"{URL}/targets/districts/其他区", headers=east_only).status_code == 404
    mine = api.get(f"{URL}/targets/districts/示例区", headers=east_only).json()
    assert {r["town"] for r in mine["rows"]} <= {"东镇", None}


def test_placement_bases_report_and_export(api_fresh, fresh, tmp_path: Path, monkeypatch):
    registry = tmp_path / "placement.yaml"
    registry.write_text(
        "config_version: t\nbases:\n"
        "  - {id: base-01-A, name: 基地A, district: 示例区, town: 东镇}\n"
        "  - {id: base-02-A, name: 基地B, district: 示例区, town: 西镇}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SUNFLOWER_PLACEMENT", str(registry))
    placed = [
        event(f"pl-{p}", "2024-07-01T09:00:00", "employment_start", p, "base-01-A", value="12")
        for p in ("p-01", "p-03", "p-04", "p-05", "p-09")
    ]
    placed.append(event("pl-07", "2024-07-01T09:00:00", "employment_start", "p-07", "base-02-A"))
    result = ingest_frames(fresh.engine, None, events_frame(*placed))
    assert result.ok, result.rejections
    sup = auth(fresh.tokens, "sup_district")
    body = api_fresh.get(f"{URL}/placement-bases/districts/示例区", headers=sup).json()
    BaseReport.model_validate(body)
    bases = {b["base_id"]: b for b in body["bases"]}
    assert (bases["base-01-A"]["qualifying"], bases["base-01-A"]["eligible"]) == (5, True)
    assert bases["base-01-A"]["total_due_yuan"] == 100_000 + 0.5 * 60 * 1800
    assert (bases["base-02-A"]["placed"], bases["base-02-A"]["eligible"]) == (1, False)
    east = auth(fresh.tokens, "sup_east")
    mine = api_fresh.get(f"{URL}/placement-bases/districts/示例区", headers=east).json()
    assert [b["base_id"] for b in mine["bases"]] == ["base-01-A"]
    assert {p["person_id"] for p in mine["people"]} <= {"p-01", "p-03", "p-04", "p-05", "p-09"}
    csv = api_fresh.get(f"{URL}/exports/placement-bases.csv?district=示例区", headers=sup)
    assert csv.status_code == 200 and "base-01-A" in csv.text
    with fresh.engine.connect() as conn:
        actions = set(conn.execute(sa.text("SELECT action FROM audit_log")).scalars())
    assert "export_bases" in actions


def test_every_catalog_alert_has_an_api_kind_words_and_a_plan_item():
    from typing import get_args

    from features.catalog import load_catalog
    from serving.api.schemas import AlertKind
    from serving.web.reasons import ALERT_PLAN
    from serving.web.words import ALERTS

    names = {a.name for a in load_catalog().alerts}
    assert set(get_args(AlertKind)) == names
    assert set(ALERTS) == names and set(ALERT_PLAN) == names
