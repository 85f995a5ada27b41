"""Data of the supervisor pages: KPIs, workers' lists, groups (一类一策), cohorts (一批一策).

Contract: every function reads the stored rows of one published run and
applies the caller's scope in SQL (:meth:`serving.auth.Principal.scope_filter`),
so a supervisor sees only their town or district and an unknown town looks
like one outside the scope (empty). A worker's top people are their first
"who first today" (:mod:`serving.priority`) with the main reason
(:mod:`serving.web.reasons`). Groups put each person under the catalog entry of
their strongest risk-raising recent sign (entries that describe the same
thing, :data:`SAME_AS`, share a group; background facts, signs of concern and
zero counts never make a group: those people are listed apart; the API's
``/groups`` uses the strongest raising driver whatever it is), and name the
group's most common second sign ("often with"), all read from the stored
explanations. Cohorts are the scoring job's cohort bits: agreement ends within
60 days, transferred in within 30 days, first 90 days of the programme, with
every member.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from features.catalog import load_catalog
from serving import queries
from serving.auth import AGGREGATE_READERS, Principal
from serving.db import explanations, monitor_metrics, monitor_runs, score_runs, scores, town_kpis
from serving.explanations import feature_specs
from serving.flags import COHORT_BITS
from serving.priority import in_priority_order, top_band
from serving.web.charts import trend
from serving.web.reasons import kind_of

from . import words
from .listing import Row, both_outcomes, rows_for

#: Members shown before the rest of a group or cohort is folded.
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
    top: list[Row] = field(default_factory=list)


def worker_lists(
    conn: Connection,
    who: Principal,
    run_id: int,
    district: str,
    town: str,
    top_n: int = 3,
) -> list[WorkerList]:
    """Each worker of the town: caseload size, people per band (each person once, under
    the higher band of the two outcomes, as in "who first today"), people with an alert,
    and their first ``top_n`` people who first today with the main reason."""
    cond = sa.and_(scores.c.district == district, scores.c.town == town, who.scope_filter(scores))
    by_worker: dict[str, list[tuple[str, Mapping[str, Mapping[str, Any]]]]] = {}
    for pid, items in both_outcomes(conn, run_id, cond).items():
        wid = next(iter(items.values()))["worker_id"]
        by_worker.setdefault(wid, []).append((pid, items))
    out = []
    for wid, people in by_worker.items():
        w = WorkerList(wid, len(people), {}, 0)
        for _, both in people:
            level = top_band(both)
            w.bands[level] = w.bands.get(level, 0) + 1
            w.with_alert += int(any(i.get("alerts") for i in both.values()))
        w.top = rows_for(conn, run_id, in_priority_order(people)[:top_n])
        out.append(w)
    return sorted(out, key=lambda w: (-w.bands.get(4, 0), -w.bands.get(3, 0), w.worker_id))


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


#: Catalog entries that describe the same thing group together (one group, not two).
SAME_AS = {
    "medicine_quantity": "medicine_purchases",
    "leave_days": "leave_notices",
    "checkins_missed_in_a_row": "checkins_missed",
    "home_visits_not_home_in_a_row": "home_visits_not_home",
    "days_employed": "employed_now",
}


def _key_driver(drivers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The strongest risk-raising recent sign (:func:`serving.web.reasons.kind_of`), or None:
    background facts, signs of concern and zero counts are not a group's main driver."""
    for d in drivers:
        if d["contribution"] > 0 and kind_of(d) == "sign":
            return d
    return None


def driver_kind(d: dict[str, Any]) -> tuple[str, str, str]:
    """(group key, zh words, en words) of a driver, without its number.

    A category (value None, e.g. household) keeps its choice — 本地户籍 and
    非本地户籍 are different groups; a count or a number of days becomes its
    catalog words with N (漏报到N次); a yes/no state that is off uses its "off"
    words (目前没有就业).
    """
    spec = feature_specs().get(d["feature"], d["feature"])
    spec = SAME_AS.get(spec, spec)
    if spec == "employed_now":  # days_employed raising the risk means "not employed" too
        off = d["feature"].startswith("days_employed") or d["value"] == 0
        return (
            "employed_now:off" if off else "employed_now",
            words.spec_label(spec, "zh", off),
            words.spec_label(spec, "en", off),
        )
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
) -> tuple[list[Group], list[dict[str, Any]]]:
    """(groups, people in none): the town's people grouped by their strongest
    risk-raising recent sign; people with no such sign among their stored drivers
    (only background, concern or zero counts raise their risk) are listed apart."""
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
    unplaced: list[dict[str, Any]] = []
    for item, body in rows:
        drivers = orjson.loads(body)["drivers"]
        key = _key_driver(drivers)
        if key is None:
            unplaced.append(orjson.loads(item))
        else:
            by.setdefault(driver_kind(key)[0], []).append((orjson.loads(item), key, drivers))
    out = []
    for group_key, members in by.items():
        second: Counter[tuple[str, str]] = Counter()
        for _, _key, drivers in members:
            others = [
                driver_kind(d)
                for d in drivers
                if d["contribution"] > 0 and kind_of(d) == "sign" and driver_kind(d)[0] != group_key
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
                actionable=True,
                plan_item=first.get("plan_item"),
                often_with=common[0][0] if common and common[0][1] * 2 >= len(members) else None,
                members=[m[0] for m in members],
            )
        )
    return sorted(out, key=lambda g: (-g.count, g.key)), unplaced


def cohorts(
    conn: Connection, who: Principal, run_id: int, outcome: str, district: str, town: str
) -> dict[str, tuple[int, list[dict[str, Any]]]]:
    """Per cohort: how many, and every member's item by town rank."""
    where = _town(who, run_id, outcome, district, town)
    out = {}
    for kind, bit in COHORT_BITS.items():
        cond = scores.c.cohort_mask.op("&")(bit) != 0
        n = conn.execute(sa.select(sa.func.count()).where(*where, cond)).scalar_one()
        items = conn.execute(
            sa.select(scores.c.item).where(*where, cond).order_by(scores.c.rank_town)
        ).scalars()
        out[kind] = (int(n), [orjson.loads(i) for i in items])
    return out


def recent_runs(conn: Connection, limit: int = 7) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(score_runs).order_by(score_runs.c.id.desc()).limit(limit)
    ).mappings()
    return [{**r, "models": orjson.loads(r["models"])} for r in rows]


def monitor_health(conn: Connection) -> dict[str, Any]:
    """The model monitor on the health page: each outcome's latest verdict and sentences,
    and two trends — the expected precision of the top-10 % list on every monitored
    date, and the realised precision of each run whose outcomes are known (stored
    once, by the first pass that saw the run closed)."""
    runs = conn.execute(
        sa.select(monitor_runs).order_by(monitor_runs.c.as_of, monitor_runs.c.id)
    ).mappings()
    latest: dict[str, dict[str, Any]] = {}
    by_day: dict[tuple[Any, str], dict[str, Any]] = {}
    for r in runs:
        row = {
            **r,
            "sentences": orjson.loads(r["sentences"]),
            "headline": orjson.loads(r["headline"]),
        }
        latest[r["outcome"]] = row
        by_day[(r["as_of"], r["outcome"])] = row
    expected = [
        {"as_of": day, "outcome": outcome, "p": row["headline"]["expected_precision_at_10pct"]}
        for (day, outcome), row in by_day.items()
        if row["headline"].get("expected_precision_at_10pct") is not None
    ]
    realised: list[dict[str, Any]] = []
    for outcome in latest:
        got = conn.execute(
            sa.select(monitor_metrics.c.run_as_of, monitor_metrics.c.value)
            .join(monitor_runs, monitor_runs.c.id == monitor_metrics.c.monitor_id)
            .where(
                monitor_runs.c.outcome == outcome,
                monitor_metrics.c.kind == "realised",
                monitor_metrics.c.scope == "district",
                monitor_metrics.c.metric == "precision_at_10pct",
            )
            .order_by(monitor_metrics.c.monitor_id)
        ).all()
        last = {row[0]: row[1] for row in got}  # stored once; a rerun replaces it
        realised += [
            {"as_of": d, "outcome": outcome, "p": v} for d, v in last.items() if v is not None
        ]
    return {"latest": latest, "expected": trend(expected), "realised": trend(realised)}


#: Largest input drift shown per town from this PSI up (the monitor's ``psi_watch``,
#: :class:`models.monitoring.verdict.Thresholds`): below it a town's inputs have not moved.
TOWN_PSI_SHOWN = 0.10
#: Drift items that are not model inputs.
NOT_INPUTS = ("score", "band")


def monitor_towns(
    conn: Connection, who: Principal, latest: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Per outcome, the towns of its latest monitored run within the caller's scope.

    A row: town; verdict (the worst non-``info`` evidence of the town, ``ok`` when
    none); expected precision@10 % (CBPE) of the run; the latest closed run whose
    realised precision@10 % is stored for the town (as of the run), with the gap
    realised − expected on that run (its expected figure is stored by its own pass);
    the input with the largest PSI (not a total since records began) when it is at
    least :data:`TOWN_PSI_SHOWN`. Supervisors see the towns :func:`places` gives
    them on the latest published run (the scope rule, in SQL); admins and model
    owners every town; other roles none (aggregates are for
    :data:`serving.auth.AGGREGATE_READERS`).
    """
    if who.role not in AGGREGATE_READERS or not latest:
        return {}
    allowed: set[str] | None = None
    if who.role == "supervisor":
        run = queries.run_for(conn, None)
        allowed = {t for _d, t in places(conn, who, run.id)} if run is not None else set()
    out: dict[str, list[dict[str, Any]]] = {}
    for outcome, mon in latest.items():
        towns = _town_figures(conn, outcome, mon)
        rows = [r for t, r in sorted(towns.items()) if allowed is None or t in allowed]
        if rows:
            out[outcome] = rows
    return out


def _town_figures(
    conn: Connection, outcome: str, mon: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    m = monitor_metrics.c
    today = conn.execute(
        sa.select(m.kind, m.key, m.metric, m.value).where(
            m.monitor_id == mon["id"], m.scope == "town", m.kind.in_(("expected", "drift"))
        )
    ).all()
    towns: dict[str, dict[str, Any]] = {}

    def row(town: str) -> dict[str, Any]:
        return towns.setdefault(
            town,
            {
                "town": town,
                "level": "ok",
                "expected": None,
                "realised": None,
                "realised_as_of": None,
                "gap": None,
                "drift": None,
                "psi": None,
            },
        )

    totals = {f.name for f in load_catalog().features() if f.window == "all"}
    for kind, town, metric, value in today:
        r = row(town)
        if kind == "expected" and metric == "precision_at_10pct":
            r["expected"] = value
        elif kind == "drift" and metric.endswith(".psi") and value is not None:
            item = metric[: -len(".psi")]
            if item in NOT_INPUTS or item in totals or value < TOWN_PSI_SHOWN:
                continue
            if r["psi"] is None or value > r["psi"]:
                r["drift"], r["psi"] = item, value
    for e in orjson.loads(mon.get("evidence") or "[]"):
        if e.get("scope") == "town" and e.get("level") in ("watch", "retrain"):
            r = row(str(e["key"]))
            if e["level"] == "retrain" or r["level"] == "ok":
                r["level"] = e["level"]
    runs = monitor_runs.c
    closed = conn.execute(
        sa.select(m.run_as_of, m.key, m.kind, m.value)
        .join(monitor_runs, runs.id == m.monitor_id)
        .where(
            runs.outcome == outcome,
            runs.as_of <= mon["as_of"],
            m.scope == "town",
            m.metric == "precision_at_10pct",
            m.kind.in_(("realised", "expected")),
            m.value.is_not(None),
        )
        .order_by(m.run_as_of, m.monitor_id)
    ).all()
    realised = {(d, t): v for d, t, k, v in closed if k == "realised"}
    expected = {(d, t): v for d, t, k, v in closed if k == "expected"}
    for (day, town), value in realised.items():  # run dates ascending: the latest stays
        if town in towns:
            got = expected.get((day, town))
            towns[town] |= {
                "realised": value,
                "realised_as_of": day,
                "gap": value - got if got is not None else None,
            }
    return towns


@dataclass
class TownRow:
    """One town of the district table: its KPIs, people per higher band, people with an alert."""

    kpi: dict[str, Any]
    bands: dict[int, int] = field(default_factory=dict)
    with_alert: int = 0


#: District table orders (``?sort=``): key -> (value of a row, largest first?).
TOWN_SORTS = ("town", "urgent", "execution_rate", "lost_contact", "employment_rate", "ratio")


def district_table(
    conn: Connection, who: Principal, run_id: int, district: str, sort: str
) -> tuple[list[TownRow], dict[str, Any]]:
    """(the district's towns with KPIs and band counts, sorted; the district's totals).

    A person counts once, under the higher band of their two outcomes (as in
    "who first today"). Totals add the towns' counts and recompute the rates
    from the sums.
    """
    rows = {k["town"]: TownRow(k) for k in kpis(conn, who, run_id, district)}
    people = conn.execute(
        sa.select(
            scores.c.town,
            scores.c.person_id,
            sa.func.max(scores.c.band),
            sa.func.max(scores.c.alert_mask),
        )
        .where(scores.c.run_id == run_id, scores.c.district == district, who.scope_filter(scores))
        .group_by(scores.c.town, scores.c.person_id)
    )
    for town, _pid, band, mask in people:
        row = rows.get(town)
        if row is not None:
            row.bands[int(band)] = row.bands.get(int(band), 0) + 1
            row.with_alert += int(bool(mask))
    out = list(rows.values())

    def value(r: TownRow) -> tuple[Any, ...]:
        k = r.kpi
        if sort == "urgent":
            return (-r.bands.get(4, 0), -r.bands.get(3, 0), k["town"])
        if sort in ("execution_rate", "employment_rate"):  # lowest first: needs attention
            return (k[sort] if k[sort] is not None else 2.0, k["town"])
        if sort == "lost_contact":
            return (-k["lost_contact"], k["town"])
        if sort == "ratio":
            return (-(k["people_per_worker"] or 0), k["town"])
        return (k["town"],)

    out.sort(key=value)
    total: dict[str, Any] = {
        key: sum(int(r.kpi.get(key) or 0) for r in out)
        for key in ("ordered", "active", "lost_contact", "employed", "workers")
    }
    total["execution_rate"] = total["active"] / total["ordered"] if total["ordered"] else None
    total["employment_rate"] = total["employed"] / total["active"] if total["active"] else None
    total["people_per_worker"] = (
        round(total["active"] / total["workers"], 2) if total["workers"] else None
    )
    total["bands"] = {b: sum(r.bands.get(b, 0) for r in out) for b in (4, 3, 2, 1)}
    total["with_alert"] = sum(r.with_alert for r in out)
    return out, total
