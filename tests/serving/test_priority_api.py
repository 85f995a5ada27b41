"""``order=priority`` on the list API: who first today, the pages' order (issue 14).

The order is :func:`serving.priority.in_priority_order` over both outcomes of each
person — the one rule the pages use — and paging cuts that order.
"""

from __future__ import annotations

from serving.priority import in_priority_order
from tests.serving.conftest import auth


def _items(api, headers, **params) -> list[dict]:
    r = api.get("/api/v1/risk-lists/me", headers=headers, params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_priority_order_is_the_pages_rule_over_both_outcomes(api, scored) -> None:
    h = auth(scored.tokens, "w1")
    both: dict[str, dict] = {}
    for outcome in ("relapse", "loss_of_contact"):
        for item in _items(api, h, outcome=outcome):
            both.setdefault(item["person_id"], {})[outcome] = item
    want = [pid for pid, _ in in_priority_order(both.items())]
    got = [i["person_id"] for i in _items(api, h, order="priority")]
    assert got == want and len(got) == len(both) > 1
    # the items are the chosen outcome's, in the same order
    lost = _items(api, h, order="priority", outcome="loss_of_contact")
    assert [i["person_id"] for i in lost] == want
    assert all(i["outcome"] == "loss_of_contact" for i in lost)
    # paging cuts the order
    page = api.get(
        "/api/v1/risk-lists/me", headers=h, params={"order": "priority", "limit": 1, "offset": 1}
    ).json()
    assert [i["person_id"] for i in page["items"]] == want[1:2] and page["total"] == len(want)


def test_an_unknown_order_is_refused_by_name(api, scored) -> None:
    r = api.get("/api/v1/risk-lists/me", headers=auth(scored.tokens, "w1"), params={"order": "x"})
    assert r.status_code == 422 and "order" in r.text
