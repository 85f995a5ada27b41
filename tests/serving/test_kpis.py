"""Town KPIs against hand-computed values (issue 14: exits counted as not executed)."""

from __future__ import annotations

import json

import pandas as pd

from serving.daily.job import town_kpis


def test_kpis_of_one_town_by_hand() -> None:
    statuses = ["active"] * 6 + ["lost_contact"] * 2 + ["exited", "custody", "ended"]
    statuses += ["not_started", "transferred_out"]
    status = pd.DataFrame(
        {
            "person_id": [f"p-{i}" for i in range(len(statuses))],
            "district": "示例区",
            "town": "东镇",
            "worker_id": ["w-1", "w-1", "w-1", "w-2", "w-2", "w-2"] + ["w-1"] * 7,
            "status": statuses,
        }
    )
    feats = pd.DataFrame({"person_id": ["p-0", "p-1", "p-6"], "employed_now": [1, 1, 1]})
    [(district, town, body)] = town_kpis(status, feats, ["employed_now"])
    k = json.loads(body)
    assert (district, town) == ("示例区", "东镇")
    # ordered = active 6 + lost contact 2; exits, custody, ended, not started and
    # transferred out are outside the denominator
    assert (k["ordered"], k["active"], k["execution_rate"]) == (8, 6, 0.75)
    assert k["lost_contact"] == 2
    # employed among the active: p-0 and p-1 (p-6 has lost contact)
    assert (k["employed"], k["employment_rate"]) == (2, round(2 / 6, 4))
    assert (k["workers"], k["people_per_worker"]) == (2, 3.0)
