"""Data of the supervisor pages: KPIs, workers' lists, groups (一类一策), cohorts (一批一策).

Contract: every function reads the stored rows of one published run and
applies the caller's scope in SQL (:meth:`serving.auth.Principal.scope_filter`),
so a supervisor sees only their town or district and an unknown town looks
like one outside the scope (empty). Groups put each person under the catalog
entry of their strongest risk-raising driver that a worker can act on (or,
when none of the stored top drivers is actionable, the strongest raising one;
the API's ``/groups`` uses the strongest raising driver whatever it is), and
name the group's most common second raising driver ("often with"), all read
from the stored explanations. Cohorts are
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

from . import words

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
    key: str
    zh: str
    en: str
    count: int
    actionable: bool
    plan_item: str | None
    often_with: tuple[str, str] | None
    members: list[dict[str, Any]]


def _key_driver(drivers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The strongest risk-raising driver a worker can act on, else the strongest raising one."""
    raising = [d for d in drivers if d["contribution"] > 0]
    actionable = [d for d in raising if d["actionable"]]
    chosen = actionable or raising
    return chosen[0] if chosen else None


def driver_kind(d: dict[str, Any]) -> tuple[str, str, str]:
    """(group key, zh words, en words) of a driver, without its number.

    A category (value None, e.g. household) keeps its choice — 本地户籍 and
    非本地户籍 are different groups; a count or a number of days becomes its
    catalog words with N (漏报到N次); a yes/no state that is off uses its "off"
    words (目前没有就业).
    """
    spec = feature_specs().get(d["feature"], d["feature"])
    if d["value"] is None:
        zh = d["sentence_zh"].split("，")[0]
        en = d["sentence_en"].split(", ")[0]
        return f"{spec}:{zh}", zh, en
    off = d["value"] == 0
    return (
        f"{spec}:off" if off and words.is_state(spec) else spec,
        words.spec_label(spec, "zh", off),
        words.spec_label(spec, "en", off),
    )


def groups(
    conn: Connection, who: Principal, run_id: int, outcome: str, district: str, town: str
) -> list[Group]:
    """People of the town grouped by their main risk-raising driver (actionable first)."""
    where = _town(who, run_id, outcome, district, town)
    rows = conn.execute(
        sa.select(scores.c.item, explanations.c.body)
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
        .where(*where)
        .order_by(scores.c.rank_town)
    )
    by: dict[str, list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]] = {}
    for item, body in rows:
        drivers = orjson.loads(body)["drivers"]
        key = _key_driver(drivers)
        if key is not None:
            by.setdefault(driver_kind(key)[0], []).append((orjson.loads(item), key, drivers))
    out = []
    for group_key, members in by.items():
        second: Counter[tuple[str, str]] = Counter()
        for _, _key, drivers in members:
            others = [
                driver_kind(d)
                for d in drivers
                if d["contribution"] > 0 and driver_kind(d)[0] != group_key
            ]
            if others:
                second[others[0][1:]] += 1
        common = second.most_common(1)
        first = members[0][1]
        _, zh, en = driver_kind(first)
        out.append(
            Group(
                key=group_key,
                zh=zh,
                en=en,
                count=len(members),
                actionable=bool(first["actionable"]),
                plan_item=first.get("plan_item") if first["actionable"] else None,
                often_with=common[0][0] if common and common[0][1] * 2 >= len(members) else None,
                members=[m[0] for m in members[:GROUP_SHOWN]],
            )
        )
    return sorted(out, key=lambda g: (not g.actionable, -g.count, g.key))


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
