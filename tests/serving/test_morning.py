"""The worker's morning rules: who first today, reasons a worker can act on, plan items.

The cases are the issue's own: a person very high for lost contact (69 %) and
low for relapse must come before people at high relapse; the same
percentage can be different bands; a family contact that the model links
with higher risk is a sign of concern, not a bad contact; background facts are
never "the reason" while a recent sign raises the risk; a person at 高风险 or
above always gets a plan item.
"""

from __future__ import annotations

from typing import Any

from serving.bands import band_words
from serving.priority import in_priority_order, priority_key, times_usual
from serving.web.reasons import (
    BAND_PROTOCOL,
    kind_of,
    leading_outcome,
    main_reason,
    phrase,
    suggested_plan,
)


def item(outcome: str, p: float, band: int, alerts: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"outcome": outcome, "p": p, "band": band_words(band), "alerts": list(alerts)}


def person(relapse: tuple[float, int], lost: tuple[float, int], alerts: tuple[str, ...] = ()):
    return {
        "relapse": item("relapse", *relapse, alerts=alerts),
        "loss_of_contact": item("loss_of_contact", *lost, alerts=alerts),
    }


def driver(feature: str, c: float, zh: str, en: str = "x", actionable: bool = True, plan=None):
    return {
        "feature": feature,
        "value": 1.0,
        "contribution": c,
        "direction": "raises" if c > 0 else "lowers",
        "sentence_zh": zh,
        "sentence_en": en,
        "actionable": actionable,
        "plan_item": plan,
    }


def test_very_high_lost_contact_comes_before_every_lower_band_of_either_outcome():
    people = [
        ("p-a", person((0.35, 3), (0.02, 1), alerts=("overdue_test",))),  # high relapse, alert
        ("p-b", person((0.004, 1), (0.69, 4))),  # the very high lost contact
        ("p-c", person((0.12, 2), (0.09, 3))),
        ("p-d", person((0.02, 1), (0.01, 1))),
    ]
    order = [pid for pid, _ in in_priority_order(people)]
    assert order == ["p-b", "p-a", "p-c", "p-d"]


def test_within_a_band_an_alert_first_then_the_more_unusual_probability():
    quiet = person((0.30, 3), (0.05, 2))
    alerted = person((0.21, 3), (0.04, 2), alerts=("overdue_check_in",))
    assert priority_key("p-x", alerted) < priority_key("p-y", quiet)
    # same band, no alerts: 10 % lost contact (3.3x usual) before 25 % relapse (2.5x usual)
    lost = person((0.05, 1), (0.10, 3))
    relapse = person((0.25, 3), (0.01, 1))
    assert times_usual("loss_of_contact", 0.10) > times_usual("relapse", 0.25)
    assert [p for p, _ in in_priority_order([("r", relapse), ("l", lost)])] == ["l", "r"]
    assert leading_outcome(lost) == "loss_of_contact" and leading_outcome(relapse) == "relapse"


def test_the_reason_is_a_recent_sign_and_background_only_when_nothing_else_raises():
    background = driver("age_first_use", 0.9, "首次吸毒时15岁，明显推高风险（+0.90）", plan=None)
    background["actionable"] = False
    sign = driver(
        "home_visits_not_home_in_a_row",
        0.2,
        "最近连续5次家访未见到本人，推高风险（+0.20）",
        "nobody at home on the last 5 home visits in a row: raises the risk (+0.20)",
        plan="home_visit",
    )
    end = driver("days_to_program_end", -0.4, "距协议期满还有40天，降低风险（-0.40）")
    end["actionable"] = False
    r = main_reason({"loss_of_contact": [background, end, sign]}, "loss_of_contact")
    assert r is not None and r.kind == "sign" and r.driver is sign
    assert r.text("zh") == "最近连续5次家访未见到本人，推高风险"
    assert r.text("en") == "nobody at home on the last 5 home visits in a row: raises the risk"
    only = main_reason({"relapse": [background]}, "relapse")
    assert only is not None and only.kind == "background"
    assert kind_of(end) == "background"


def test_a_family_contact_linked_with_higher_risk_reads_as_concern_and_plans_nothing():
    contact = driver(
        "family_contacts_30d",
        0.1,
        "在过去30天内与家属联系3次，略微推高风险（+0.10）",
        plan="family_counselling",
    )
    assert kind_of(contact) == "concern"
    words = phrase(contact, "zh")
    assert "值得留意的信号" in words and "接触本身不是坏事" in words and "推高" not in words
    assert "（+" not in words
    assert suggested_plan({"relapse": [contact]}, {"relapse": band_words(1)}, []) == []
    # a family contact that lowers the risk is an ordinary sign
    helps = driver("family_contacts_30d", -0.2, "在过去30天内与家属联系3次，降低风险（-0.20）")
    assert kind_of(helps) == "sign" and phrase(helps, "zh") == "在过去30天内与家属联系3次，降低风险"


def test_every_person_at_high_or_above_gets_a_plan_item():
    bands = {"relapse": band_words(1), "loss_of_contact": band_words(4)}
    plan = suggested_plan({"relapse": [], "loss_of_contact": []}, bands, [])
    assert [p.id for p in plan] == list(BAND_PROTOCOL["loss_of_contact"])
    assert plan[0].source == "protocol" and plan[0].outcomes == ["loss_of_contact"]
    assert "极高风险" in plan[0].because[0][0]
    alert = {"kind": "overdue_check_in", "zh": "报到已逾期52天", "en": "check-in 52 days overdue"}
    from_alert = suggested_plan({"relapse": []}, {"relapse": band_words(3)}, [alert])
    assert [p.id for p in from_alert] == ["home_visit"] and from_alert[0].source == "alert"
    assert suggested_plan({"relapse": []}, {"relapse": band_words(2)}, []) == []


def test_a_zero_count_of_trouble_is_not_a_reason_or_a_plan_item():
    zero = driver(
        "medicine_purchases_30d",
        0.05,
        "在过去30天内购买特殊药品0次，略微推高风险（+0.05）",
        plan="pharmacy_review",
    )
    zero["value"] = 0.0
    missed = driver("checkins_missed_90d", -0.1, "在过去90天内漏报到0次，略微降低风险（-0.10）")
    assert kind_of(zero) == "quiet"
    r = main_reason({"relapse": [zero, missed]}, "relapse")
    assert r is not None and r.driver is missed
    assert suggested_plan({"relapse": [zero]}, {"relapse": band_words(2)}, []) == []
