"""Every page over HTTP: sign-in, sessions, CSRF, lists, person page, supervisor views, access."""

from __future__ import annotations

import re

import sqlalchemy as sa

from serving.auth import hash_token
from serving.db import actions, api_tokens, audit_log
from serving.web.session import SESSION_COOKIE
from tests.serving.conftest import auth
from tests.web.conftest import csrf_in


def _audit(site, username: str, action: str, person_id: str | None = None) -> int:
    q = sa.select(sa.func.count()).where(
        audit_log.c.username == username, audit_log.c.action == action
    )
    if person_id:
        q = q.where(audit_log.c.person_id == person_id)
    with site.engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def test_root_sends_a_signed_out_visitor_to_sign_in(app_client):
    app_client.cookies.clear()
    r = app_client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page = app_client.get("/login")
    assert '<html lang="zh-CN">' in page.text and "<h1>登录</h1>" in page.text
    r = app_client.get("/people/p-01", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fpeople%2Fp-01"


def test_sign_in_sets_a_strict_http_only_session_stored_hashed(app_client, site):
    app_client.cookies.clear()
    form = app_client.get("/login?next=/people/p-01")
    r = app_client.post(
        "/login",
        data={
            "username": "w1",
            "token": site.tokens["w1"],
            "csrf": csrf_in(form.text),
            "next": "/people/p-01",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/people/p-01"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    session = re.search(rf"{SESSION_COOKIE}=([^;]+)", cookie).group(1)
    with site.engine.connect() as conn:
        stored = conn.execute(
            sa.select(api_tokens.c.token_hash, api_tokens.c.label, api_tokens.c.expires_at).where(
                api_tokens.c.token_hash == hash_token(session)
            )
        ).one()
        raw = conn.execute(
            sa.select(sa.func.count()).where(api_tokens.c.token_hash == session)
        ).scalar_one()
    assert stored.label == "web-session" and stored.expires_at is not None and raw == 0
    assert app_client.get("/", follow_redirects=False).headers["location"] == "/my-list"


def test_sign_in_refuses_bad_credentials_and_forms_without_csrf(app_client, site):
    app_client.cookies.clear()
    good = csrf_in(app_client.get("/login").text)
    for name, token in (("w1", "sf_wrong"), ("w2", site.tokens["w1"]), ("", "")):
        r = app_client.post("/login", data={"username": name, "token": token, "csrf": good})
        assert r.status_code == 401 and "用户名或访问令牌不正确" in r.text
        assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
        good = csrf_in(r.text)
    r = app_client.post("/login", data={"username": "w1", "token": site.tokens["w1"]})
    assert r.status_code == 403 and SESSION_COOKIE not in r.headers.get("set-cookie", "")
    r = app_client.post(
        "/login", data={"username": "w1", "token": site.tokens["w1"], "csrf": "forged"}
    )
    assert r.status_code == 403


def test_sign_in_never_redirects_off_site(app_client, site):
    app_client.cookies.clear()
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        form = app_client.get("/login")
        r = app_client.post(
            "/login",
            data={
                "username": "w1",
                "token": site.tokens["w1"],
                "csrf": csrf_in(form.text),
                "next": target,
            },
            follow_redirects=False,
        )
        assert r.headers["location"] == "/my-list"
        app_client.cookies.clear()


def test_sign_out_needs_csrf_and_ends_the_session(as_user):
    client = as_user("w1")
    session = client.cookies[SESSION_COOKIE]
    page = client.get("/my-list")
    r = client.post("/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403 and client.get("/my-list").status_code == 200
    r = client.post("/logout", data={"csrf": csrf_in(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?signed_out=1"
    client.cookies.set(SESSION_COOKIE, session)
    r = client.get("/my-list", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_my_list_is_ranked_in_chinese_with_alerts_changes_and_filters(as_user, site):
    client = as_user("w1")
    before = _audit(site, "w1", "web_list")
    r = client.get("/my-list")
    assert r.status_code == 200 and '<html lang="zh-CN">' in r.text
    order = re.findall(r'class="person-link">(p-\d+)<', r.text)
    assert order[0] == "p-01" and sorted(order) == ["p-01", "p-02", "p-03", "p-09"]
    assert "极高风险" in r.text and "新记录：2025-05-29检测阳性" in r.text
    assert "个百分点" in r.text and 'class="meter"' in r.text
    assert _audit(site, "w1", "web_list") == before + 1
    one = client.get("/my-list?alert=positive_test")
    assert re.findall(r'class="person-link">(p-\d+)<', one.text) == ["p-01"]
    low = client.get("/my-list?band=low")
    assert re.findall(r'class="person-link">(p-\d+)<', low.text) == ["p-09"]
    lost = client.get("/my-list?outcome=loss_of_contact&band=nonsense&alert=bogus")
    assert lost.status_code == 200 and "脱管失控风险" in lost.text
    printed = client.get("/my-list?view=print")
    assert "print-table" in printed.text and "已完成（签名/日期）" in printed.text
    en = client.get("/my-list?lang=en")
    assert '<html lang="en">' in en.text and "My list today" in en.text
    assert "sf_lang=en" in en.headers["set-cookie"]
    client.cookies.delete("sf_lang")


def test_person_page_shows_scores_trend_drivers_plan_what_if_and_timeline(as_user, site):
    client = as_user("w1")
    before = _audit(site, "w1", "web_person", "p-01")
    r = client.get("/people/p-01")
    assert r.status_code == 200
    for part in ("复吸风险", "脱管失控风险", 'class="trend"', "推高风险", "建议措施", "假设分析"):
        assert part in r.text, part
    assert r.text.count("<polyline") == 2 and 'value="done"' in r.text
    assert "在过去365天内检测阳性1次" in r.text and "尿检" in r.text
    assert _audit(site, "w1", "web_person", "p-01") == before + 1


def test_recording_an_action_uses_the_api_path_and_shows_in_the_timeline(as_user, site):
    client = as_user("w1")
    page = client.get("/people/p-02")
    plan_item = re.search(r'name="plan_item" value="([a-z_]+)"', page.text).group(1)
    form = {
        "kind": "plan_item",
        "plan_item": plan_item,
        "status": "not_suitable",
        "note": "本人已搬家，改为电话联系",
    }
    r = client.post("/people/p-02/actions", data=form, follow_redirects=False)
    assert r.status_code == 403
    r = client.post(
        "/people/p-02/actions", data={**form, "csrf": csrf_in(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/people/p-02?recorded=1")
    shown = client.get("/people/p-02?recorded=1")
    assert "已记录" in shown.text and "本人已搬家，改为电话联系" in shown.text
    assert "最近记录：不适合" in shown.text
    api = client.get("/api/v1/persons/p-02/actions", headers=auth(site.tokens, "w1")).json()
    assert api[0]["status"] == "not_suitable" and api[0]["plan_item"] == plan_item
    assert api[0]["by"] == "w1" and _audit(site, "w1", "action", "p-02") >= 1


def test_what_if_form_rescoring_is_shown_and_not_stored(as_user, site):
    client = as_user("w1")
    page = client.get("/people/p-01")
    assert 'name="f:employed_now"' in page.text
    with site.engine.connect() as conn:
        n_actions = conn.execute(sa.select(sa.func.count()).select_from(actions)).scalar_one()
    r = client.post(
        "/people/p-01/what-if", data={"csrf": csrf_in(page.text), "f:employed_now": "1"}
    )
    assert r.status_code == 200 and "假设结果" in r.text and "假设后" in r.text
    same = client.post("/people/p-01/what-if", data={"csrf": csrf_in(page.text)})
    assert "没有改变任何输入" in same.text
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(actions)).scalar_one() == (
            n_actions
        )
    assert _audit(site, "w1", "what_if", "p-01") >= 1


def test_a_worker_cannot_reach_another_caseload_by_editing_the_url(as_user, site):
    client = as_user("w1")
    theirs = client.get("/people/p-04")
    missing = client.get("/people/p-nobody")
    assert theirs.status_code == missing.status_code == 404
    # identical but for the typed URL, which the language link echoes back
    assert theirs.text.replace("p-04", "?") == missing.text.replace("p-nobody", "?")
    assert "p-04" not in theirs.text.split('<main id="main"')[1]
    other, unknown = client.get("/caseload/w-2"), client.get("/caseload/w-nobody")
    assert other.status_code == unknown.status_code == 404
    assert other.text.replace("w-2", "?") == unknown.text.replace("w-nobody", "?")
    assert client.get("/caseload/w-1").status_code == 200
    assert client.get("/town").status_code == 403
    page = client.get("/my-list")
    r = client.post(
        "/people/p-04/actions", data={"csrf": csrf_in(page.text), "kind": "other", "note": "x"}
    )
    assert r.status_code == 404
    w = client.post("/people/p-04/what-if", data={"csrf": csrf_in(page.text)})
    assert w.status_code == 404
    with site.engine.connect() as conn:
        stored = conn.execute(sa.select(actions.c.id).where(actions.c.person_id == "p-04"))
        assert stored.first() is None
    assert _audit(site, "w1", "web_person", "p-04") == 0


def test_town_supervisor_sees_kpis_workers_groups_cohorts_and_model_health(as_user, site):
    client = as_user("sup_east")
    r = client.get("/town")
    assert r.status_code == 200 and "东镇（示例区）督导视图" in r.text
    for part in (
        "执行率",
        "脱管失控人数",
        "就业率",
        "人均管理人数（标准1:20）",
        "一类一策",
        "一批一策",
        "协议60天内期满",
        "本月转入",
        "出所后前3个月",
        "模型状态",
        "sunflower-relapse",
    ):
        assert part in r.text, part
    assert 'href="/caseload/w-1"' in r.text and "w-3" not in r.text
    assert re.search(r'<article class="group"', r.text)
    assert client.get("/town?town=西镇").status_code == 404
    assert client.get("/people/p-04").status_code == 200
    assert client.get("/people/p-07").status_code == 404
    assert client.get("/caseload/w-2").status_code == 200
    assert client.get("/caseload/w-3").status_code == 404
    assert _audit(site, "sup_east", "web_town") >= 1


def test_district_supervisor_and_admin_choose_towns(as_user):
    client = as_user("sup_district")
    r = client.get("/town")
    assert "示例区 督导视图" in r.text and "东镇" in r.text and "西镇" in r.text
    west = client.get("/town?town=西镇&outcome=loss_of_contact")
    assert west.status_code == 200 and "西镇（示例区）" in west.text
    assert client.get("/town?town=北镇").status_code == 404
    assert client.get("/town?district=别区").status_code == 404
    admin = as_user("admin")
    assert "示例区" in admin.get("/town").text
    assert admin.get("/town?district=示例区&town=东镇").status_code == 200


def test_roles_without_person_reads_get_no_person_pages(as_user):
    owner = as_user("owner")
    assert owner.get("/", follow_redirects=False).headers["location"] == "/model-health"
    assert owner.get("/model-health").status_code == 200
    assert owner.get("/people/p-01").status_code == 404
    assert owner.get("/caseload/w-1").status_code == 404
    assert owner.get("/town").status_code == 403
    integ = as_user("integ")
    assert integ.get("/", follow_redirects=False).headers["location"] == "/no-pages"
    assert "/docs" in integ.get("/no-pages").text


def test_every_page_renders_in_english_too(as_user):
    client = as_user("sup_district")
    for url in (
        "/town",
        "/town?town=东镇",
        "/people/p-01",
        "/caseload/w-1",
        "/caseload/w-1?view=print",
        "/model-health",
    ):
        r = client.get(url + ("&" if "?" in url else "?") + "lang=en")
        assert r.status_code == 200 and '<html lang="en">' in r.text, url
    client.cookies.delete("sf_lang")


def test_pages_are_not_cached_load_nothing_from_elsewhere_and_forbid_framing(as_user):
    client = as_user("w1")
    r = client.get("/people/p-01")
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text)
    css = client.get("/static/app.css")
    assert css.status_code == 200 and "url(" not in css.text
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/nope.js").status_code == 404


def test_pages_state_the_horizon_the_runs_champions_were_trained_for(as_user, site):
    """Issue 12: "{h}天内" comes from the shown run's champions, not a fixed 90."""
    import orjson

    from serving import queries
    from serving.db import score_runs

    client = as_user("w1")
    assert "90天内概率" in client.get("/my-list").text  # no horizon recorded: labels.yaml's
    with site.engine.begin() as conn:
        run_id, models = conn.execute(
            sa.select(score_runs.c.id, score_runs.c.models)
            .where(score_runs.c.status == "published")
            .order_by(score_runs.c.as_of.desc())
            .limit(1)
        ).one()
        changed = {o: {**m, "horizon_days": 60} for o, m in orjson.loads(models).items()}
        conn.execute(
            score_runs.update()
            .where(score_runs.c.id == run_id)
            .values(models=orjson.dumps(changed).decode())
        )
    queries.forget_runs()
    try:
        page = client.get("/my-list").text
        assert "60天内概率" in page and "未来60天内" in page and "90天内概率" not in page
    finally:
        with site.engine.begin() as conn:
            conn.execute(score_runs.update().where(score_runs.c.id == run_id).values(models=models))
        queries.forget_runs()
