"""Web fixtures: the serving tests' scored district, signed-in clients, a live server, chromium.

``site`` is the hand-built district of :mod:`tests.serving.district`, scored
twice (2025-05-31 and 2025-06-01) with the fake champions, on SQLite. Page
tests sign in through the real form (:func:`sign_in`). Browser tests get a
real uvicorn server on a free 127.0.0.1 port (``live``) and Debian's chromium
(``browser``); screenshots go to ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import Scored, build, client_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
]


def _sqlite(folder: Path) -> Scored:
    return build(f"sqlite:///{folder / 'sunflower.db'}", folder)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scored]:
    s = _sqlite(tmp_path_factory.mktemp("web"))
    yield s
    s.engine.dispose()


@pytest.fixture(scope="module")
def app_client(site: Scored) -> Iterator[TestClient]:
    with client_for(site) as client:
        yield client


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no csrf field on the page"
    return found.group(1)


def sign_in(client: TestClient, tokens: dict[str, str], name: str) -> None:
    """Sign ``name`` in through the form; the client keeps the session cookie."""
    client.cookies.clear()
    form = client.get("/login")
    r = client.post(
        "/login",
        data={"username": name, "token": tokens[name], "csrf": csrf_in(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


@pytest.fixture
def as_user(app_client: TestClient, site: Scored) -> Any:
    """``as_user("w1")`` signs in and returns the client."""

    def go(name: str) -> TestClient:
        sign_in(app_client, site.tokens, name)
        return app_client

    yield go
    app_client.cookies.clear()


# ---- a live server and chromium for the browser tests ----


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Live:
    def __init__(self, scored: Scored) -> None:
        import uvicorn

        from serving.app import create_app
        from tests.serving.fakes import fake_champions

        champs = fake_champions()
        app = create_app(scored.settings(), loader=lambda o: champs[o])
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.scored = scored
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="web-live", daemon=True)

    def __enter__(self) -> Live:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    scored = _sqlite(tmp_path_factory.mktemp("live"))
    with Live(scored) as server:
        yield server
    scored.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail(
            "Debian's chromium is not installed: run .ci/run, or "
            "`apt-get install chromium fonts-noto-cjk` (never `playwright install`)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
