"""The worker's morning over real HTTP: who first today, reasons, plan items, printout, wording.

The expected order is computed here from the API's own stored items (both
outcomes) with the rule as docs/pages.md writes it, independently of
:mod:`serving.priority`.
"""

from __future__ import annotations

import re

from serving.bands import THRESHOLDS

ROW = re.compile(r'<tr class="row-band-(\d)">(.*?)</tr>', re.S)


def _api_items(client, token: str) -> dict[str, dict[str, dict]]:
    people: dict[str, dict[str, dict]] = {}
    for outcome in ("relapse", "loss_of_contact"):
        r = client.get(
            f"/api/v1/risk-lists/me?outcome={outcome}&limit=100",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
        for item in r.json()["items"]:
            people.setdefault(item["person_id"], {})[outcome] = item
    return people


def _documented_order(people: dict[str, dict[str, dict]]) -> list[str]:
    def key(pid: str) -> tuple:
        items = people[pid]
        band = max(i["band"]["level"] for i in items.values())
        alert = any(i["alerts"] for i in items.values())
        unusual = max(i["p"] / THRESHOLDS[o][0] for o, i in items.items())
        return (-band, not alert, -unusual, pid)

    return sorted(people, key=key)


def test_who_first_today_is_one_order_over_both_outcomes(as_user, site):
    for name in ("w1", "w2"):
        client = as_user(name)
        page = client.get("/my-list")
        assert page.status_code == 200
        shown = re.findall(r'class="person-link">(p-\d+)<', page.text)
        client.cookies.clear()
        expected = _documented_order(_api_items(client, site.tokens[name]))
        assert shown == expected, name
        client = as_user(name)
        rows = ROW.findall(client.get("/my-list").text)
        levels = [int(level) for level, _ in rows]
        assert levels == sorted(levels, reverse=True)  # a higher band is never below a lower one
        for _, cells in rows:  # both outcomes on every row
            assert cells.count('class="band band-') == 2
    client = as_user("w1")
    by_lost = client.get("/my-list?sort=loss_of_contact")
    assert "脱管失控风险" in by_lost.text and 'value="loss_of_contact" checked' in by_lost.text


def test_row_one_shows_a_recent_sign_and_a_plan_item_and_high_rows_always_have_a_plan(as_user):
    client = as_user("w1")
    rows = ROW.findall(client.get("/my-list").text)
    level, first = rows[0]
    reason = re.search(r'<td class="reason"[^>]*>(.*?)</td>', first, re.S)
    assert reason is not None
    assert "▲" in reason.group(1) and "背景" not in reason.group(1)
    assert "检测阳性" in reason.group(1) and 'class="small plan-line"' in reason.group(1)
    for level, cells in rows:
        if int(level) >= 3:
            assert "plan-line" in cells
    person = client.get("/people/p-01").text
    assert "没有建议措施" not in person and 'name="plan_item" value="medical_referral"' in person


def test_no_raw_contributions_repeated_directions_or_model_names_on_worker_pages(as_user):
    client = as_user("w1")
    pages = [client.get(u).text for u in ("/my-list", "/my-list?view=print", "/people/p-01")]
    pages += [client.get(u + ("&" if "?" in u else "?") + "lang=en").text for u in ("/my-list",)]
    client.cookies.delete("sf_lang")
    for html in pages:
        assert not re.search(r"[（(][+-]\d+\.\d+[）)]", html)
        assert "升高风险" not in html and "raises risk</span>" not in html
    person = pages[2]
    assert "sunflower-relapse" not in person and "近期迹象" in person and "背景情况" in person
    # background facts are kept, under their own heading, not as the reason
    background = person.split("背景情况（不可干预")[1].split("</ul>")[0]
    assert "曾强制隔离戒毒2次" in background
    admin = as_user("admin").get("/people/p-01").text
    assert "sunflower-relapse v1" in admin


def test_printout_keeps_both_outcomes_the_data_age_and_a_notes_column(as_user):
    client = as_user("w1")
    printed = client.get("/my-list?view=print").text
    head = printed.split("<thead>")[1].split("</thead>")[0]
    for word in ("复吸风险", "脱管失控风险", "备注", "已完成（签名/日期）"):
        assert word in head, word
    assert re.search(r"评分日期 <strong>2025-06-01</strong> · \d+ 天前", printed)
    body = printed.split("<tbody>")[1]
    assert body.count('class="band band-') == 2 * body.count("<tr>")
    assert body.count('class="notes"') == body.count("<tr>")


def test_bands_legend_data_age_and_change_since_the_previous_run(as_user):
    client = as_user("w1")
    html = client.get("/my-list").text
    assert re.search(r"评分日期 <strong>2025-06-01</strong> · \d+ 天前", html)
    assert "≥ 3%" in html and "≥ 10%" in html and "同样的百分比可能是不同的等级" in html
    # the district was scored 2025-05-31 and 2025-06-01: every row compares with the day before
    assert "首次评分" not in html and "还没有上一次评分" not in html
    assert html.count("个百分点") + html.count("无变化") >= 4
    person = client.get("/people/p-01").text
    assert re.search(r"评分日期 <strong>2025-06-01</strong> · \d+ 天前", person)


def _visible(html: str) -> str:
    body = html.split("<main", 1)[-1]
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", body)


def test_a_person_off_the_list_gets_the_reason_not_a_command(as_user):
    client = as_user("admin")
    lost = _visible(client.get("/people/p-06").text)
    assert "自 2025-04-01 起脱管失控" in lost and "sunflower" not in lost
    assert "没有规则预警" not in lost  # no "no alerts" line for someone who was not scored


def test_pages_have_no_code_words_placeholders_or_commands(as_user):
    visits = {
        "admin": [f"/people/p-0{i}" for i in range(1, 10)]
        + ["/caseload/w-1", "/caseload/w-2", "/caseload/w-1/follow-up", "/model-health"]
        + ["/town?district=示例区", "/town?district=示例区&town=东镇"],
        "w1": ["/my-list", "/my-list?view=print", "/my-list/follow-up", "/login"],
        "sup_east": ["/town", "/town?outcome=loss_of_contact"],
    }
    for name, urls in visits.items():
        client = as_user(name)
        for url in urls:
            for lang in ("zh", "en"):
                sep = "&" if "?" in url else "?"
                text = _visible(client.get(f"{url}{sep}lang={lang}").text)
                assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), (url, lang)  # not_home
                assert not re.search(r"[{}]|N次|N天|N岁|N单位|sunflower |…", text), (url, lang)
                if lang == "zh":
                    assert not re.search(r"\b(moving|concern|met|missed|attended)\b", text), url
        client.cookies.delete("sf_lang")


def test_timeline_values_carry_units_and_what_if_labels_ask_for_a_number(as_user):
    client = as_user("w1")
    text = _visible(client.get("/people/p-03").text)
    assert "购买特殊药品 数量3单位" in text and "(3)" not in text
    assert "已多少天没有任何接触" in text and "N天" not in text


def test_sign_in_help_names_no_command_and_a_wrong_token_keeps_the_user_name(app_client):
    app_client.cookies.clear()
    form = app_client.get("/login")
    assert "sunflower users" not in form.text and "`" not in _visible(form.text)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = app_client.post("/login", data={"username": "w1", "token": "sf_wrong", "csrf": csrf})
    assert r.status_code == 401
    assert 'name="username" autocomplete="username" required value="w1"' in r.text
    assert "sf_wrong" not in r.text


def test_other_work_is_recorded_with_the_date_it_was_done_and_disagree_is_explained(as_user, site):
    client = as_user("w1")
    page = client.get("/people/p-09").text
    assert 'type="date"' in page and "不认同：您认为这个评分明显偏高或偏低" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = client.post(
        "/people/p-09/actions",
        data={"csrf": csrf, "kind": "home_visit", "done_on": "2025-05-30", "note": "见到本人"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    timeline = _visible(client.get("/people/p-09").text)
    assert "工作日期 2025-05-30：见到本人" in timeline


def test_town_view_groups_act_on_signs_with_full_members_and_cohort_plans(as_user):
    client = as_user("sup_east")
    html = client.get("/town").text
    text = _visible(html)
    assert not re.search(r"N次|N天|N岁|N单位|[{}]|…", text)
    titles = re.findall(
        r'<article class="group" aria-labelledby="g-\d+">\s*<h3[^>]*>([^<]+)<', html
    )
    assert titles, "no groups"
    for title in titles:  # a group is a recent sign, never a background fact
        assert not re.search(r"强制隔离戒毒|首次吸毒|吸毒史|户籍|距协议期满|年龄", title), title
    assert "批量安排：出所后前3个月复吸风险最高" in text
    # worker lists: the first people "who first today", with a reason, not the stored sentence
    assert not re.search(r"[（(][+-]\d+\.\d+[）)]", text)
    w1 = html.split('<th scope="row" data-label="社工">w-1</th>')[1].split("</tr>")[0]
    assert re.findall(r'<a href="/people/(p-\d+)">', w1)[0] == "p-01"
    counts = re.findall(r'band-word">([^<]+)</span></span>×(\d+)', w1)
    assert counts == [("极高风险", "1"), ("高风险", "2"), ("低风险", "1")]  # higher of the two


def test_model_health_is_in_words_and_not_in_a_workers_navigation(as_user):
    worker = as_user("w1").get("/my-list").text
    assert 'href="/model-health"' not in worker
    town = as_user("sup_east").get("/town").text
    assert 'href="/model-health"' in town and "区分能力（AUC" in town and "在用模型" in town
    assert "champion" not in _visible(town)


def _xlsx_rows(content: bytes) -> list[list[str]]:
    """The workbook's rows as text, opened with openpyxl (as the issue asks)."""
    import io

    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]


def test_search_finds_a_person_and_exports_hold_the_lists_rows(as_user, site):
    client = as_user("w1")
    found = client.get("/my-list?q=P-03")
    assert re.findall(r'class="person-link">(p-\d+)<', found.text) == ["p-03"]
    assert 'value="P-03"' in found.text
    shown = re.findall(r'class="person-link">(p-\d+)<', client.get("/my-list").text)
    before = _audit_count(site, "w1", "web_export")
    xlsx = client.get("/my-list?view=xlsx")
    assert xlsx.status_code == 200 and xlsx.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    rows = _xlsx_rows(xlsx.content)
    assert rows[0][:2] == ["排名", "人员编号"] and "脱管失控风险 · 风险等级" in rows[0]
    assert [r[1] for r in rows[1:]] == shown
    assert _audit_count(site, "w1", "web_export") == before + len(shown)
    try:
        import openpyxl
    except ImportError:
        openpyxl = None
    if openpyxl is not None:  # opened by a real spreadsheet reader when one is installed
        import io

        sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
        assert [sheet.cell(row=i + 2, column=2).value for i in range(len(shown))] == shown
    csv_text = client.get("/my-list?view=csv&band=very_high").content.decode("utf-8-sig")
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("排名,人员编号") and lines[1].split(",")[1] == "p-01"
    assert len(lines) == 2


def _audit_count(site, username: str, action: str) -> int:
    import sqlalchemy as sa

    with site.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM audit_log WHERE username = :u AND action = :a"),
                {"u": username, "a": action},
            ).scalar_one()
        )


def test_since_the_last_scores_new_alerts_and_events_recorded_after_the_run(as_user, site):
    from features.ingest import ingest_frames
    from tests.factories import event, events_frame
    from tests.serving import district

    text = _visible(as_user("w2").get("/my-list").text)
    assert "自上次评分（2025-05-31）以来" in text
    assert "新预警 p-05 （新记录：2025-05-31拒绝检测）" in text  # not in the 05-31 run
    person = _visible(as_user("w2").get("/people/p-05").text)
    assert "自上次评分（2025-05-31）以来 新预警 p-05 （新记录：2025-05-31拒绝检测）" in person
    late = event(
        "p-09-late",
        "2025-06-01T08:00:00",
        "home_visit",
        "p-09",
        "not_home",
        recorded_at="2025-06-01T09:00:00",
    )
    assert ingest_frames(site.engine, district.persons(), events_frame(late)).ok
    client = as_user("w1")
    listed = _visible(client.get("/my-list").text)
    assert "2025-06-01 起新记录的事件（不在今天的评分里） p-09 1 条" in listed
    person = _visible(client.get("/people/p-09").text)
    assert "家访 未见到本人 来源: 社工 评分后新记录，未计入评分" in person


def test_column_headers_sort_the_list(as_user):
    client = as_user("w1")
    html = client.get("/my-list?q=p-0").text
    assert 'href="/my-list?sort=person&amp;q=p-0"' in html and 'aria-sort="descending"' in html
    by_id = client.get("/my-list?sort=person").text
    assert re.findall(r'class="person-link">(p-\d+)<', by_id) == ["p-01", "p-02", "p-03", "p-09"]
    assert 'aria-sort="ascending"' in by_id


def test_admin_pages_list_accounts_and_the_audit_log_for_admins_only(as_user, site):
    admin = as_user("admin")
    users = admin.get("/admin/users")
    assert users.status_code == 200
    text = _visible(users.text)
    assert "w1 禁毒社工 社工 w-1" in text and "sup_east 督导 示例区 东镇" in text
    assert site.tokens["w1"] not in users.text and "sf_" not in text
    audit = admin.get("/admin/audit?user=admin&action=web_admin_users")
    lines = _visible(audit.text)
    assert audit.status_code == 200 and "web_admin_users" in lines and "admin 管理员" in lines
    assert 'href="/admin/audit"' in audit.text
    for name in ("w1", "sup_east"):
        client = as_user(name)
        assert client.get("/admin/users").status_code == 403
        assert client.get("/admin/audit").status_code == 403
        assert 'href="/admin/users"' not in client.get("/").text


def test_follow_up_lists_open_plan_items_with_due_dates_and_drops_done_ones(as_user):
    client = as_user("w1")
    page = client.get("/my-list/follow-up")
    assert page.status_code == 200 and 'href="/my-list/follow-up"' in page.text
    text = _visible(page.text)
    # very high: due 1 day after the run of 2025-06-01; the test runs later, so overdue
    assert "2025-06-02 已逾期 p-01 极高风险" in text and "美沙酮或医疗转介" in text
    assert "2025-06-04 已逾期 p-02 高风险" in text and "加测或突击检测" in text
    form = client.get("/people/p-02").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = client.post(
        "/people/p-02/actions",
        data={"csrf": csrf, "kind": "plan_item", "plan_item": "extra_testing", "status": "done"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    after = client.get("/my-list/follow-up").text
    rows = [_visible(x) for x in re.findall(r"<tr class=\"row-band-\d\">(.*?)</tr>", after, re.S)]
    assert not any("p-02" in x and "加测或突击检测" in x for x in rows)
    assert any("p-02" in x and "家访" in x for x in rows)
    assert as_user("sup_east").get("/caseload/w-1/follow-up").status_code == 200
    assert as_user("w2").get("/caseload/w-1/follow-up").status_code == 404


def test_district_view_has_band_counts_totals_and_sorting(as_user):
    client = as_user("sup_district")
    html = client.get("/town").text
    text = _visible(html)
    assert "各等级人数（两项风险取高）" in text and "全区合计" in text
    foot = _visible(html.split("<tfoot>")[1].split("</tfoot>")[0])
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    towns = re.findall(r'<tr><th scope="row">([^<]+)</th>', body)
    assert towns == ["东镇", "西镇"]
    # 8 persons are scored (p-06 lost contact is not): the bands in the total add up to 8
    assert sum(int(n) for n in re.findall(r"×(\d+)", foot)) == 8
    lost = client.get("/town?sort=lost_contact").text
    body = lost.split("<tbody>")[1].split("</tbody>")[0]
    assert re.findall(r'<tr><th scope="row">([^<]+)</th>', body)[0] == "西镇"  # p-06
    assert 'aria-sort="descending"' in lost
