"""Demo accounts for ``make run``: one per role, scoped to the stored district.

Contract: :func:`create_demo_accounts` makes (or reuses) ``demo-worker`` (the
worker with the largest caseload), ``demo-town`` (a supervisor of that
worker's town), ``demo-district`` (a supervisor of the district),
``demo-model-owner``, ``demo-integrator`` and ``demo-admin``, issues each a
fresh token and returns them. Persons must be stored first (ingest).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.store import persons
from serving.auth import add_user, issue_token
from serving.db import migrate, users


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    scope: str
    token: str


def create_demo_accounts(engine: Engine, days: int = 30) -> list[DemoAccount]:
    """Create or reuse one account per role; return each with a new token."""
    migrate(engine)
    with engine.connect() as conn:
        top = conn.execute(
            sa.select(persons.c.worker_id, persons.c.district, persons.c.town, sa.func.count())
            .group_by(persons.c.worker_id, persons.c.district, persons.c.town)
            .order_by(sa.func.count().desc(), persons.c.worker_id)
            .limit(1)
        ).first()
    if top is None:
        raise ValueError("no persons stored yet: run `sunflower ingest DIR` first")
    worker, district, town = top.worker_id, top.district, top.town
    plan = [
        ("demo-worker", "worker", {"worker_id": worker}, f"caseload {worker}"),
        ("demo-town", "supervisor", {"district": district, "town": town}, f"{district}/{town}"),
        ("demo-district", "supervisor", {"district": district}, district),
        ("demo-model-owner", "model_owner", {}, "models and aggregates"),
        ("demo-integrator", "integrator", {}, "ingest and ad-hoc scoring"),
        ("demo-admin", "admin", {}, "everything, audit log"),
    ]
    out = []
    for name, role, scope, words in plan:
        with engine.connect() as conn:
            exists = conn.execute(sa.select(users.c.id).where(users.c.username == name)).first()
        if exists is None:
            add_user(engine, name, role, **scope)
        out.append(
            DemoAccount(name, role, words, issue_token(engine, name, label="demo", days=days))
        )
    return out
