"""The district's other duties as the API and the pages read them (issue 17).

Contract: due lists, controlled-medicine warnings, placement bases and
responsibility targets for a caller and a published run. The rules are the
features package's, never restated here: :mod:`features.schedule` (due lists),
the catalog's graded medicine alerts (stored by the daily job),
:mod:`features.placement` (eligibility), :mod:`features.targets` (targets; the
KPIs are the daily job's stored ``town_kpis``). Scope is applied in SQL as for
the lists: a person is in scope when their score row of the run is
(:meth:`serving.auth.Principal.scope_filter`), a base or a town when its
district and town are. Inputs are read from the input tables as known at the
run's day (``recorded_at`` before its midnight), so the figures are those of the
run's morning, like the lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from features.catalog import load_catalog
from features.contract import split_purchase
from features.placement import Eligibility, eligibility, load_placement_config
from features.schedule import due_list
from features.store import events as events_table
from features.store import persons as persons_table
from features.targets import against_targets, load_targets
from serving import queries
from serving.auth import Principal
from serving.db import alerts, score_runs, scores, town_kpis

#: Ids per ``IN (...)`` (well under SQLite's and PostgreSQL's parameter limits).
CHUNK = 500
#: How far back a warning lists the person's purchases.
PURCHASE_DAYS = 30


def _midnight(run: queries.Run) -> pd.Timestamp:
    return pd.Timestamp(run.as_of)


def people_in_scope(
    conn: Connection, who: Principal, run_id: int, **where: str | None
) -> list[str]:
    """Person ids of the run (its cohort) in the caller's scope and the given columns."""
    conds = [scores.c.run_id == run_id, scores.c.outcome == "relapse", who.scope_filter(scores)]
    conds += [scores.c[col] == value for col, value in where.items() if value is not None]
    rows = conn.execute(sa.select(scores.c.person_id).where(*conds).order_by(scores.c.person_id))
    return [r for (r,) in rows]


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for lo in range(0, len(ids), CHUNK):
        yield ids[lo : lo + CHUNK]


def load_persons(conn: Connection, ids: Sequence[str]) -> pd.DataFrame:
    """The persons rows of ``ids`` (canonical dates)."""
    cols = [persons_table.c[c] for c in ("person_id", "district", "town", "worker_id",
                                          "program_start", "program_end")]  # fmt: skip
    parts = [
        pd.DataFrame(
            conn.execute(sa.select(*cols).where(persons_table.c.person_id.in_(part))).all(),
            columns=[c.name for c in cols],
        )
        for part in _chunks(ids)
    ]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    for c in ("program_start", "program_end"):
        frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
    return frame.sort_values("person_id").reset_index(drop=True)


def load_events(
    conn: Connection,
    before: pd.Timestamp,
    *,
    ids: Sequence[str] | None = None,
    where: sa.ColumnElement[bool] | None = None,
) -> pd.DataFrame:
    """Events recorded before ``before`` of ``ids`` (or matching ``where``)."""
    e = events_table
    cols = [e.c.person_id, e.c.ts, e.c.recorded_at, e.c.type, e.c.result, e.c.value]
    cond = e.c.recorded_at < before.to_pydatetime()
    queries_ = (
        [sa.and_(cond, e.c.person_id.in_(part)) for part in _chunks(ids)]
        if ids is not None
        else [sa.and_(cond, where if where is not None else sa.true())]
    )
    rows = [r for q in queries_ for r in conn.execute(sa.select(*cols).where(q)).all()]
    frame = pd.DataFrame(rows, columns=[c.name for c in cols])
    for c in ("ts", "recorded_at"):
        frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
    frame["value"] = frame["value"].astype("float64")
    return frame


# ------------------------------------------------------------------ due lists


def due(
    conn: Connection,
    who: Principal,
    run: queries.Run,
    *,
    worker_id: str | None = None,
    district: str | None = None,
    town: str | None = None,
) -> pd.DataFrame:
    """The due list (:func:`features.schedule.due_list`) of the run's cohort in scope."""
    ids = people_in_scope(conn, who, run.id, worker_id=worker_id, district=district, town=town)
    people = load_persons(conn, ids)
    return due_list(people, load_events(conn, _midnight(run), ids=ids), _midnight(run))


# ------------------------------------------------------------ medicine warnings


def medicine_kinds() -> dict[str, int]:
    """Graded medicine alerts of the catalog: kind -> level."""
    return {
        a.name: int(a.level)
        for a in load_catalog().alerts
        if a.level is not None and "controlled_medicine_purchase" in a.events.types
    }


@dataclass
class Warning_:
    person_id: str
    worker_id: str
    level: int  # the highest of the person's medicine alerts
    alerts: list[dict[str, Any]]  # kind, level, zh, en, since
    purchases: list[dict[str, Any]]  # ts, medicine, pharmacy, quantity (last 30 days)


def medicine_warnings(
    conn: Connection, who: Principal, run: queries.Run, district: str, town: str
) -> list[Warning_]:
    """People of the town with a medicine alert on the run, most serious first."""
    kinds = medicine_kinds()
    rows = conn.execute(
        sa.select(
            scores.c.person_id, scores.c.worker_id, alerts.c.kind, alerts.c.since, alerts.c.body
        )  # fmt: skip
        .join(
            alerts,
            sa.and_(alerts.c.run_id == scores.c.run_id, alerts.c.person_id == scores.c.person_id),
        )  # fmt: skip
        .where(
            scores.c.run_id == run.id,
            scores.c.outcome == "relapse",
            scores.c.district == district,
            scores.c.town == town,
            who.scope_filter(scores),
            alerts.c.kind.in_(list(kinds)),
        )
    ).all()
    found: dict[str, Warning_] = {}
    for r in rows:
        w = found.setdefault(r.person_id, Warning_(r.person_id, r.worker_id, 0, [], []))
        body = orjson.loads(r.body)
        w.alerts.append({**body, "kind": r.kind, "level": kinds[r.kind], "since": r.since})
        w.level = max(w.level, kinds[r.kind])
    if found:
        since = _midnight(run) - pd.Timedelta(days=PURCHASE_DAYS)
        bought = load_events(conn, _midnight(run), ids=sorted(found))
        bought = bought.loc[
            (bought["type"] == "controlled_medicine_purchase") & (bought["ts"] >= since)
        ].sort_values("ts", ascending=False)
        columns = (bought[c].tolist() for c in ("person_id", "ts", "result", "value"))
        for pid, ts, result, value in zip(*columns, strict=True):
            medicine, pharmacy = split_purchase(None if pd.isna(result) else str(result))
            found[str(pid)].purchases.append(
                {"ts": pd.Timestamp(ts).to_pydatetime(), "medicine": medicine,
                 "pharmacy": pharmacy, "quantity": None if pd.isna(value) else float(value)}
            )  # fmt: skip
    for w in found.values():
        w.alerts.sort(key=lambda a: (-a["level"], a["kind"]))
    return sorted(found.values(), key=lambda w: (-w.level, -len(w.alerts), w.person_id))


# ------------------------------------------------------------- placement bases


def placement(
    conn: Connection, who: Principal, run: queries.Run, district: str, town: str | None = None
) -> Eligibility:
    """The eligibility of the bases of a district (or town) in the caller's scope.

    The per-person rows keep only people in the caller's scope (a base may place
    someone supervised elsewhere; they are counted, not named).
    """
    config = load_placement_config()
    eqs = dict(who.scope_eqs() or {})
    if who.scope_eqs() is None or eqs.get("worker_id"):
        bases: tuple[Any, ...] = ()
    else:
        bases = tuple(
            b
            for b in config.bases
            if b.district == district
            and (town is None or b.town == town)
            and eqs.get("district", b.district) == b.district
            and eqs.get("town", b.town) == b.town
        )
    mine = config.model_copy(update={"bases": bases})
    ids = [b.id for b in bases]
    where = sa.and_(events_table.c.type == "employment_start", events_table.c.result.in_(ids))
    found = (
        load_events(conn, _midnight(run), where=where)
        if ids
        else load_events(conn, _midnight(run), ids=[])
    )
    report = eligibility(mine, found, run.as_of)
    bases_frame = report.bases.loc[report.bases["registered"]].reset_index(drop=True)
    seen = set(people_in_scope(conn, who, run.id, district=district))
    people = report.people.loc[report.people["person_id"].isin(seen)].reset_index(drop=True)
    return Eligibility(report.as_of, report.window_start, bases_frame, people)


# -------------------------------------------------------- responsibility targets


def _previous_run(conn: Connection, run: queries.Run) -> queries.Run | None:
    """The latest published run at least a year before ``run``."""
    year_before = run.as_of - timedelta(days=365)
    row = conn.execute(
        sa.select(score_runs.c.id, score_runs.c.as_of)
        .where(score_runs.c.status == "published", score_runs.c.as_of <= year_before)
        .order_by(score_runs.c.as_of.desc())
        .limit(1)
    ).first()
    return queries.Run(row.id, row.as_of) if row else None


def _kpi_bodies(
    conn: Connection, who: Principal, run_id: int, district: str, town: str | None
) -> list[dict[str, Any]]:
    conds = [town_kpis.c.run_id == run_id, town_kpis.c.district == district,
             who.scope_filter(town_kpis)]  # fmt: skip
    if town is not None:
        conds.append(town_kpis.c.town == town)
    rows = conn.execute(sa.select(town_kpis.c.body).where(*conds).order_by(town_kpis.c.town))
    return [orjson.loads(b) for (b,) in rows]


def district_total(bodies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A district's KPIs from its towns': counts added, rates recomputed from the sums."""
    total: dict[str, Any] = {"district": bodies[0]["district"] if bodies else None, "town": None}
    for key in ("ordered", "active", "lost_contact", "employed", "workers", "abstinent_3y",
                "abstinent_3y_year_before"):  # fmt: skip
        values = [b.get(key) for b in bodies]
        total[key] = sum(v for v in values if v is not None) if bodies else None
    ordered, active, workers = total["ordered"], total["active"], total["workers"]
    total["execution_rate"] = round(active / ordered, 4) if ordered else None
    total["employment_rate"] = round(total["employed"] / active, 4) if active else None
    total["people_per_worker"] = round(active / workers, 2) if workers else None
    return total


def targets(
    conn: Connection, who: Principal, run: queries.Run, district: str, town: str | None = None
) -> pd.DataFrame:
    """Each town's KPIs (and, for a district, its total) against the targets in force.

    The growth targets' baseline is a signed one (``targets.yaml``), else the KPI of
    the latest published run at least a year before, else (people abstinent 3 years)
    the daily job's count a year before the run's day.
    """
    bodies = _kpi_bodies(conn, who, run.id, district, town)
    if not bodies:
        return pd.DataFrame()
    places = [*bodies, district_total(bodies)] if town is None else bodies
    before = _previous_run(conn, run)
    previous = _kpi_bodies(conn, who, before.id, district, town) if before else []
    if town is None and previous:
        previous = [*previous, district_total(previous)]
    known = {(p["district"], p.get("town")): p for p in previous}
    for place in places:  # the job's own count a year before, when no run is that old
        key = (place["district"], place.get("town"))
        if place.get("abstinent_3y_year_before") is not None:
            known.setdefault(key, {"district": key[0], "town": key[1]})
            known[key].setdefault("abstinent_3y", place["abstinent_3y_year_before"])
    frame = against_targets(load_targets(), places, list(known.values()))
    return frame.astype(object).where(frame.notna(), None)  # unknown: None, not NaN
