"""Data of the supervisor pages: KPIs, workers' lists, groups (一类一策), cohorts (一批一策).

Contract: every function reads the stored rows of one published run and
applies the caller's scope in SQL (:meth:`serving.auth.Principal.scope_filter`),
so a supervisor sees only their town or district and an unknown town looks
like one outside the scope (empty). Groups put each person under the catalog
entry of their strongest risk-raising driver (the ``top_spec`` the scoring job
stored, like the API's ``/groups``) and name the group's most common second
raising driver ("often with"), read from the stored explanations. Cohorts are
the scoring job's cohort bits: agreement ends within 60 days, transferred in
within 30 days, first 90 days of the programme.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from serving.alerts import COHORT_BITS
from serving.auth import Principal
from serving.db import explanations, score_runs, scores, town_kpis
from serving.explain import feature_specs

COHORT_SHOWN = 30
GROUP_SHOWN = 12


def places(conn: Connection, who: Principal, run_id: int) -> list[tuple[str, str]]:
    """(district, town) pairs of the run within the caller's scope."""
    rows = conn.execute(
        sa.select(town_kpis.c.district, town_kpis.c.town)
        .where(town_kpis.c.run_id == run_id, who.scope_filter(town_kpis))
        .order_by(town_kpis.c.district, town_kpis.c.town)
    )
    return [(d, t) for d, t in rows]


def kpis(
    conn: Connection, who: Principal, run_id: int, district: str, town: str | None = None
) -> list[dict[str, Any]]:
    conds = [town_kpis.c.run_id == run_id, town_kpis.c.district == district]
    if town is not None:
        conds.append(town_kpis.c.town == town)
    rows = conn.execute(
        sa.select(town_kpis.c.body)
        .where(*conds, who.scope_filter(town_kpis))
        .order_by(town_kpis.c.town)
    ).scalars()
    return [orjson.loads(r) for r in rows]


def _town(who: Principal, run_id: int, outcome: str, district: str, town: str) -> list[Any]:
    return [
        scores.c.run_id == run_id,
        scores.c.outcome == outcome,
        scores.c.district == district,
        scores.c.town == town,
        who.scope_filter(scores),
    ]


@dataclass
class WorkerList:
    worker_id: str
    size: int
    bands: dict[int, int]
    with_alert: int
    top: list[dict[str, Any]] = field(default_factory=list)


def worker_lists(
    conn: Connection,
    who: Principal,
    run_id: int,
    outcome: str,
    district: str,
    town: str,
    top_n: int = 3,
) -> list[WorkerList]:
    """Each worker of the town: caseload size, people per band, alerts, top ``top_n`` items."""
    where = _town(who, run_id, outcome, district, town)
    out: dict[str, WorkerList] = {}
    rows = conn.execute(
        sa.select(
            scores.c.worker_id,
            scores.c.band,
            sa.func.count(),
            sa.func.sum(sa.case((scores.c.alert_mask != 0, 1), else_=0)),
        )
        .where(*where)
        .group_by(scores.c.worker_id, scores.c.band)
        .order_by(scores.c.worker_id)
    )
    for wid, band, n, alerted in rows:
        w = out.setdefault(wid, WorkerList(wid, 0, {}, 0))
        w.size += int(n)
        w.bands[int(band)] = int(n)
        w.with_alert += int(alerted or 0)
    tops = conn.execute(
        sa.select(scores.c.worker_id, scores.c.item)
        .where(*where, scores.c.rank_caseload <= top_n)
        .order_by(scores.c.worker_id, scores.c.rank_caseload)
    )
    for wid, item in tops:
        out[wid].top.append(orjson.loads(item))
    return sorted(out.values(), key=lambda w: (-w.bands.get(4, 0), -w.bands.get(3, 0), w.worker_id))


@dataclass
class Group:
    spec: str
    count: int
    plan_item: str | None
    off: bool
    often_with: str | None
    members: list[dict[str, Any]]


def groups(
    conn: Connection, who: Principal, run_id: int, outcome: str, district: str, town: str
) -> list[Group]:
    """People of the town grouped by their main risk-raising driver, largest group first."""
    where = _town(who, run_id, outcome, district, town)
    rows = conn.execute(
        sa.select(scores.c.top_spec, scores.c.item, explanations.c.body)
        .select_from(
            scores.join(
                explanations,
                sa.and_(
                    explanations.c.run_id == scores.c.run_id,
                    explanations.c.person_id == scores.c.person_id,
                    explanations.c.outcome == scores.c.outcome,
                ),
            )
        )
        .where(*where, scores.c.top_spec.is_not(None))
        .order_by(scores.c.top_spec, scores.c.rank_town)
    )
    specs = feature_specs()
    by: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for spec, item, body in rows:
        by.setdefault(spec, []).append((orjson.loads(item), orjson.loads(body)))
    out = []
    for spec, members in by.items():
        second: Counter[str] = Counter()
        zeros = 0
        for item, body in members:
            raising = [d for d in body["drivers"] if d["contribution"] > 0]
            names = [specs.get(d["feature"], d["feature"]) for d in raising]
            others = [n for n in dict.fromkeys(names) if n != spec]
            if others:
                second[others[0]] += 1
            top = item.get("top_driver") or {}
            zeros += int(top.get("value") == 0)
        plan = (members[0][0].get("top_driver") or {}).get("plan_item")
        common = second.most_common(1)
        out.append(
            Group(
                spec,
                len(members),
                plan,
                zeros * 2 > len(members),
                common[0][0] if common and common[0][1] * 2 >= len(members) else None,
                [m[0] for m in members[:GROUP_SHOWN]],
            )
        )
    return sorted(out, key=lambda g: (-g.count, g.spec))


def cohorts(
    conn: Connection, who: Principal, run_id: int, outcome: str, district: str, town: str
) -> dict[str, tuple[int, list[dict[str, Any]]]]:
    """Per cohort: how many, and the first :data:`COHORT_SHOWN` items by town rank."""
    where = _town(who, run_id, outcome, district, town)
    out = {}
    for kind, bit in COHORT_BITS.items():
        cond = scores.c.cohort_mask.op("&")(bit) != 0
        n = conn.execute(sa.select(sa.func.count()).where(*where, cond)).scalar_one()
        items = conn.execute(
            sa.select(scores.c.item)
            .where(*where, cond)
            .order_by(scores.c.rank_town)
            .limit(COHORT_SHOWN)
        ).scalars()
        out[kind] = (int(n), [orjson.loads(i) for i in items])
    return out


def recent_runs(conn: Connection, limit: int = 7) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(score_runs).order_by(score_runs.c.id.desc()).limit(limit)
    ).mappings()
    return [{**r, "models": orjson.loads(r["models"])} for r in rows]
