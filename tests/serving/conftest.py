"""Serving fixtures: a scored hand-built district on SQLite and PostgreSQL, accounts, clients.

``scored`` is module-scoped (read-only tests share one database per backend);
``fresh`` builds a new one per test for tests that write. Both are
parametrised over SQLite and the throwaway PostgreSQL cluster of
``tests/conftest.py``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from features.ingest import ingest_frames
from features.store import make_engine
from serving.auth import add_user, issue_token
from serving.daily.job import score_date
from serving.settings import ServingSettings, get_settings
from tests.serving import district
from tests.serving.fakes import fake_champions

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ACCOUNTS = {
    "w1": ("worker", {"worker_id": "w-1"}),
    "w2": ("worker", {"worker_id": "w-2"}),
    "sup_east": ("supervisor", {"district": "示例区", "town": "东镇"}),
    "sup_district": ("supervisor", {"district": "示例区"}),
    "owner": ("model_owner", {}),
    "integ": ("integrator", {}),
    "admin": ("admin", {}),
}
ROLES_OF = {name: role for name, (role, _) in ACCOUNTS.items()}


@dataclass
class Scored:
    url: str
    engine: sa.Engine
    tokens: dict[str, str]
    home: Path

    def settings(self) -> ServingSettings:
        return get_settings(database_url=self.url, home=self.home, auth_cache_seconds=0)


def build(url: str, home: Path) -> Scored:
    engine = make_engine(url)
    result = ingest_frames(engine, district.persons(), district.events())
    assert result.ok, result.rejections
    champions = fake_champions()
    score_date(engine, date.fromisoformat(district.PREVIOUS), champions)
    score_date(engine, date.fromisoformat(district.AS_OF), champions)
    tokens = {}
    for name, (role, scope) in ACCOUNTS.items():
        add_user(engine, name, role, **scope)
        tokens[name] = issue_token(engine, name)
    return Scored(url, engine, tokens, home)


_counter = iter(range(1, 1_000_000))


def _url(request: pytest.FixtureRequest, backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'sunflower.db'}"
    cluster = request.getfixturevalue("pg_cluster")
    return cluster.url(f"s{os.getpid()}_{next(_counter)}")


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]


@pytest.fixture(scope="module", params=BACKENDS)
def scored(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scored]:
    """A scored district shared by a module's read-only tests."""
    home = tmp_path_factory.mktemp("scored")
    s = build(_url(request, request.param, home), home)
    yield s
    s.engine.dispose()


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scored]:
    """A scored district of its own, for tests that write."""
    s = build(_url(request, request.param, tmp_path), tmp_path)
    yield s
    s.engine.dispose()


def client_for(s: Scored, champions: dict | None = None) -> TestClient:
    from serving.app import create_app

    champs = champions or fake_champions()
    return TestClient(create_app(s.settings(), loader=lambda o: champs[o]))


@pytest.fixture(scope="module")
def api(scored: Scored) -> Iterator[TestClient]:
    with client_for(scored) as client:
        yield client


@pytest.fixture
def api_fresh(fresh: Scored) -> Iterator[TestClient]:
    with client_for(fresh) as client:
        yield client


def auth(tokens: dict[str, str], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[name]}"}
