"""The worker's morning in a real browser (Debian's chromium via playwright).

A worker signs in; row 1 is the person the documented order (docs/pages.md,
"Who first today") puts first, computed here from the API's stored items of
both outcomes; it shows a recent sign and a plan item; the person page has the
plan; the printout carries both outcomes and the data's age; search finds a
person; the .xlsx export downloads with the list's rows. Desktop and tablet
screenshots go to ``test-artifacts/screenshots`` (``20-…``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.bands import THRESHOLDS
from tests.web.conftest import Live, shot
from tests.web.test_morning import _xlsx_rows

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


def documented_first(live: Live, name: str) -> str:
    """Row 1 by the rule as written: higher band of either outcome, an alert, times usual."""
    people: dict[str, dict[str, dict[str, Any]]] = {}
    auth = {"Authorization": f"Bearer {live.scored.tokens[name]}"}
    for outcome in ("relapse", "loss_of_contact"):
        r = httpx.get(f"{live.url}/api/v1/risk-lists/me?outcome={outcome}", headers=auth)
        assert r.status_code == 200, r.text
        for item in r.json()["items"]:
            people.setdefault(item["person_id"], {})[outcome] = item

    def key(pid: str) -> tuple[Any, ...]:
        items = people[pid]
        return (
            -max(i["band"]["level"] for i in items.values()),
            not any(i["alerts"] for i in items.values()),
            -max(i["p"] / THRESHOLDS[o][0] for o, i in items.items()),
            pid,
        )

    return min(people, key=key)


def test_the_morning(page: Any, live: Live, tmp_path: Path) -> None:
    page.goto(f"{live.url}/")
    page.fill("#username", "w1")
    page.fill("#token", live.scored.tokens["w1"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/my-list")

    first = page.locator("table.risk-list tbody tr").first
    assert first.locator("a.person-link").inner_text() == documented_first(live, "w1")
    reason = first.locator("td.reason").inner_text()
    assert "▲" in reason and "背景" not in reason and "建议：" in reason
    assert not re.search(r"[（(][+-]\d", reason)
    assert first.locator(".band").count() == 2  # both outcomes
    assert "评分日期" in page.locator(".data-age").first.inner_text()
    shot(page, "20-morning-list")
    page.set_viewport_size(TABLET)
    shot(page, "21-morning-list-tablet")
    page.set_viewport_size(DESKTOP)

    person_id = first.locator("a.person-link").inner_text()
    first.locator("a.person-link").click()
    page.wait_for_url(f"**/people/{person_id}")
    assert page.locator("form.plan-item").count() >= 1
    assert page.locator("h4", has_text="近期迹象").count() >= 1
    assert "sunflower-" not in page.locator("main").inner_text()
    shot(page, "22-morning-person")
    page.set_viewport_size(TABLET)
    shot(page, "23-morning-person-tablet")
    page.set_viewport_size(DESKTOP)

    page.goto(f"{live.url}/my-list?view=print")
    page.emulate_media(media="print")
    head = page.locator("table.print-table thead").inner_text()
    assert "复吸风险" in head and "脱管失控风险" in head and "备注" in head
    assert re.search(r"评分日期 \d{4}-\d\d-\d\d · \d+ 天前", page.locator(".data-age").inner_text())
    shot(page, "24-morning-print")
    page.emulate_media(media="screen")

    page.goto(f"{live.url}/my-list")
    page.fill("#q", "p-03")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=p-03**")
    assert page.locator("a.person-link").all_inner_texts() == ["p-03"]
    shot(page, "25-morning-search")

    page.goto(f"{live.url}/my-list")
    shown = page.locator("a.person-link").all_inner_texts()
    with page.expect_download() as info:
        page.click("text=导出 Excel")
    saved = tmp_path / "list.xlsx"
    info.value.save_as(saved)
    rows = _xlsx_rows(saved.read_bytes())
    assert [r[1] for r in rows[1:]] == shown


AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the current page (WCAG 2.x A and AA rules and best practice)."""
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `npm ci --prefix tests/web` (.ci/run does it)")
    page.add_script_tag(content=AXE.read_text("utf-8"))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [{"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:5]} for v in result]


def test_every_page_passes_axe_at_both_widths(browser: Any, live: Live) -> None:
    pages = {
        "w1": [
            "/my-list",
            "/my-list?view=print",
            "/my-list/follow-up",
            "/my-list/due",
            "/people/p-01",
            "/people/p-09",
        ],
        "sup_east": ["/town", "/town/duties", "/caseload/w-2", "/people/p-04", "/model-health"],
        "admin": [
            "/town?district=示例区",
            "/town/duties?district=示例区",
            "/people/p-06",
            "/admin/users",
            "/admin/audit",
        ],
    }
    found: dict[str, list[dict[str, Any]]] = {}
    for viewport in (DESKTOP, TABLET):
        context = browser.new_context(viewport=viewport, locale="zh-CN", bypass_csp=True)
        context.set_default_timeout(10_000)
        pg = context.new_page()
        pg.goto(f"{live.url}/login")
        found[f"/login@{viewport['width']}"] = axe_violations(pg)
        for name, urls in pages.items():
            pg.context.clear_cookies()
            pg.goto(f"{live.url}/login")
            pg.fill("#username", name)
            pg.fill("#token", live.scored.tokens[name])
            pg.keyboard.press("Enter")
            pg.wait_for_url(lambda u: "/login" not in u)
            for url in urls:
                pg.goto(f"{live.url}{url}")
                found[f"{url}@{viewport['width']}"] = axe_violations(pg)
        context.close()
    assert {k: v for k, v in found.items() if v} == {}
