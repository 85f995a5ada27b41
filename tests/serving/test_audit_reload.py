"""The audit log (who saw whom), model reload under load, and a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.serving.conftest import auth
from tests.serving.fakes import fake_champions

ROOT = Path(__file__).resolve().parents[2]


def _audit(engine):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT username, role, action, person_id FROM audit_log ORDER BY id")
        ).all()


def test_every_person_level_read_is_audited(api_fresh, fresh):
    h = auth(fresh.tokens, "w1")
    api_fresh.get("/api/v1/persons/p-01", headers=h)
    api_fresh.get("/api/v1/persons/p-01/explanation", headers=h)
    api_fresh.get("/api/v1/persons/p-01/history", headers=h)
    api_fresh.get("/api/v1/persons/p-01/timeline", headers=h)
    api_fresh.post("/api/v1/persons/p-01/what-if", headers=h, json={"changes": {"employed_now": 1}})
    api_fresh.get("/api/v1/exports/risk-list.csv?worker_id=w-1", headers=h)
    api_fresh.get("/api/v1/risk-lists/me", headers=h)
    api_fresh.get("/api/v1/persons/p-04", headers=h)  # out of scope: 404, nothing shown
    rows = _audit(fresh.engine)
    assert ("w1", "worker", "person", "p-01") in rows
    assert ("w1", "worker", "explanation", "p-01") in rows
    assert ("w1", "worker", "history", "p-01") in rows
    assert ("w1", "worker", "timeline", "p-01") in rows
    assert ("w1", "worker", "what_if", "p-01") in rows
    assert {r.person_id for r in rows if r.action == "export"} == {"p-01", "p-02", "p-03", "p-09"}
    assert ("w1", "worker", "risk_list", None) in rows
    assert not [r for r in rows if r.person_id == "p-04"]


def test_admins_query_the_log_and_nobody_edits_it(api_fresh, fresh):
    api_fresh.get("/api/v1/persons/p-01/explanation", headers=auth(fresh.tokens, "sup_east"))
    admin = auth(fresh.tokens, "admin")
    page = api_fresh.get("/api/v1/admin/audit?person_id=p-01", headers=admin).json()
    assert page["total"] >= 1
    first = page["items"][0]
    assert (first["username"], first["role"], first["action"]) == (
        "sup_east",
        "supervisor",
        "explanation",
    )
    assert first["detail"]["outcome"] == "relapse" and first["at"]
    for method in ("delete", "put", "patch"):
        r = api_fresh.request(method.upper(), "/api/v1/admin/audit", headers=admin)
        assert r.status_code == 405
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with fresh.engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_log SET username = 'someone'"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with fresh.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_log"))


def test_reload_swaps_champions_without_dropping_requests(fresh):
    current = {"version": "1"}

    def loader(outcome):
        time.sleep(0.2)  # a slow registry: requests keep flowing meanwhile
        return fake_champions(version=current["version"])[outcome]

    from serving.app import create_app

    app = create_app(fresh.settings(), loader=loader)
    from fastapi.testclient import TestClient

    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()
    with TestClient(app) as client:
        h = auth(fresh.tokens, "w1")
        integ = auth(fresh.tokens, "integ")
        row = dict.fromkeys(fake_champions()["relapse"].feature_names, 1.0)

        def hammer():
            while not stop.is_set():
                r = client.get("/api/v1/risk-lists/me", headers=h)
                statuses.append(r.status_code)
                s = client.post("/api/v1/score/features", headers=integ, json={"features": row})
                statuses.append(s.status_code)
                versions.add(s.json()["results"][0]["model"]["version"])

        workers = [threading.Thread(target=hammer) for _ in range(3)]
        for w in workers:
            w.start()
        time.sleep(0.3)
        current["version"] = "2"
        r = client.post("/api/v1/admin/reload", headers=auth(fresh.tokens, "admin"))
        time.sleep(0.3)
        stop.set()
        for w in workers:
            w.join()
        assert r.status_code == 200
        assert [m["version"] for m in r.json()["after"]] == ["2", "2"]
        assert [m["version"] for m in r.json()["before"]] == ["1", "1"]
    assert statuses and set(statuses) == {200}
    assert versions == {"1", "2"}


SERVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    import uvicorn
    from serving.app import create_app
    from serving.settings import get_settings
    from tests.serving.fakes import fake_champions

    def loader(outcome):
        version = Path({version_file!r}).read_text().strip()
        return fake_champions(version=version)[outcome]

    app = create_app(get_settings(database_url={url!r}, home={home!r}), loader=loader)
    uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_uvicorn_serves_and_reloads_on_sighup(fresh, tmp_path):
    port = _free_port()
    version_file = tmp_path / "version"
    version_file.write_text("1")
    script = SERVER.format(
        root=str(ROOT),
        version_file=str(version_file),
        url=fresh.url,
        home=str(fresh.home),
        port=port,
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        h = auth(fresh.tokens, "w1")
        with httpx.Client(base_url=base, headers=h, timeout=5) as c:
            assert c.get("/api/v1/risk-lists/me").json()["total"] == 4
            assert c.get("/api/v1/models").json()["models"][0]["version"] == "1"
            version_file.write_text("2")
            os.kill(proc.pid, signal.SIGHUP)
            deadline = time.time() + 30
            while time.time() < deadline:
                if c.get("/api/v1/models").json()["models"][0]["version"] == "2":
                    break
                time.sleep(0.1)
            assert c.get("/api/v1/models").json()["models"][0]["version"] == "2"
            assert c.get("/api/v1/persons/p-01/explanation").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_service_starts_without_champions_and_says_not_ready(fresh):
    def missing(outcome):
        raise LookupError("no champion registered")

    from fastapi.testclient import TestClient

    from serving.app import create_app

    with TestClient(create_app(fresh.settings(), loader=missing)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        h = auth(fresh.tokens, "w1")
        assert c.get("/api/v1/risk-lists/me", headers=h).status_code == 200
        w = c.post("/api/v1/persons/p-01/what-if", headers=h, json={"changes": {"employed_now": 1}})
        assert w.status_code == 503 and w.json()["error"]["code"] == "models_not_ready"
