"""In a real browser (Debian's chromium via playwright): the three journeys of the issue.

A worker signs in (keyboard only), sees their list in Chinese, opens the top
person, sees drivers and plan items, records an action and sees it in the
timeline, tries a what-if; the same worker is refused another caseload's
person; a town supervisor sees KPIs, workers' lists and groups. Every page is
written to ``test-artifacts/screenshots``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.conftest import Live, shot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 800, "height": 1180}


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


def sign_in(page: Any, live: Live, name: str) -> None:
    page.goto(f"{live.url}/")
    assert page.url.endswith("/login")
    page.fill("#username", name)
    page.fill("#token", live.scored.tokens[name])
    page.click("button[type=submit].primary")


def test_worker_signs_in_reads_list_records_action(page: Any, live: Live) -> None:
    page.goto(f"{live.url}/")
    assert "/login" in page.url
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "登录"
    assert page.evaluate("document.activeElement.id") == "username"  # autofocus
    shot(page, "01-login")
    page.keyboard.type("w1")
    page.keyboard.press("Tab")
    page.keyboard.type(live.scored.tokens["w1"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/my-list")
    assert page.locator("h1").inner_text() == "我的今日名单"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    rows = page.locator("table.risk-list tbody tr")
    assert rows.count() == 4
    assert "风险" in rows.first.inner_text()
    shot(page, "02-my-list")

    page.set_viewport_size(TABLET)
    shot(page, "03-my-list-tablet")
    page.set_viewport_size(DESKTOP)
    page.click("text=打印版")
    page.emulate_media(media="print")
    shot(page, "04-my-list-print")
    page.emulate_media(media="screen")
    page.go_back()

    top = page.locator("a.person-link").first
    person_id = top.inner_text()
    top.click()
    page.wait_for_url(f"**/people/{person_id}")
    assert page.locator(".driver").count() >= 2
    assert page.locator("svg.trend polyline").count() == 2
    plans = page.locator("form.plan-item")
    assert plans.count() >= 1
    shot(page, "05-person")

    first = plans.first
    item_name = first.locator("h3").inner_text()
    first.locator("textarea").fill("已电话联系，约定下周去医院复诊")
    first.locator("button[value=done]").click()
    page.wait_for_url("**recorded=1**")
    entry = page.locator("#timeline li.tl-action").first
    assert "已电话联系，约定下周去医院复诊" in entry.inner_text()
    assert item_name in entry.inner_text() and "已完成" in entry.inner_text()
    assert "最近记录：已完成" in page.locator("form.plan-item").first.inner_text()
    shot(page, "06-person-recorded")

    employed = page.locator("#wi-employed_now")
    if employed.count():
        employed.select_option("1")
    else:
        box = page.locator("form.what-if input[type=number]").first
        box.fill(str(int(box.input_value() or 0) + 3))
    page.click("form.what-if button[type=submit]")
    assert page.locator(".what-if-result").is_visible()
    page.locator("#what-if").scroll_into_view_if_needed()
    shot(page, "07-what-if")


def test_worker_is_refused_another_caseloads_person(page: Any, live: Live) -> None:
    sign_in(page, live, "w1")
    page.wait_for_url("**/my-list")
    other = page.goto(f"{live.url}/people/p-04")
    assert other is not None and other.status == 404
    refused = page.locator("main").inner_text()
    assert "p-04" not in page.content().split("<main")[1]
    shot(page, "08-not-found")
    missing = page.goto(f"{live.url}/people/p-99")
    assert missing is not None and missing.status == 404
    assert page.locator("main").inner_text() == refused


def test_supervisor_sees_town_view(page: Any, live: Live) -> None:
    sign_in(page, live, "sup_east")
    page.wait_for_url("**/town")
    assert "东镇" in page.locator("h1").inner_text()
    kpis = page.locator(".kpi")
    assert kpis.count() == 4
    assert "执行率" in kpis.first.inner_text()
    assert "1:20" in page.locator(".kpi-grid").inner_text()
    assert page.locator("article.group").count() >= 1
    assert page.locator("table.workers tbody tr").count() == 2
    shot(page, "09-town")
    page.set_viewport_size(TABLET)
    shot(page, "10-town-tablet")
    page.goto(f"{live.url}/town?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    shot(page, "11-town-en")
