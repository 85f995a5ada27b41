"""Data of the list pages: a caseload's stored list items, filtered, with alert messages.

Contract: :func:`parse_filters` reads the list filters from a query string
(unknown values fall back to the defaults, never to an error page).
:func:`caseload` returns the published run, the run before it, and one row
per person with both outcomes' items exactly as the scoring job stored them
(the same items the API's ``/risk-lists/workers/{id}`` returns), ordered
"who first today" (:mod:`serving.priority`) or by one outcome, each with its
reason and plan items (:mod:`serving.web.reasons`) and alert messages;
scope is applied in SQL with :meth:`serving.auth.Principal.scope_filter`, so
a caseload outside the caller's scope is reported like an unknown one (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.datastructures import QueryParams

from features.config import OUTCOMES
from serving import queries
from serving.auth import Principal
from serving.bands import BAND_CODES
from serving.db import alerts, scores
from serving.flags import ALERT_BITS, COHORT_BITS
from serving.priority import in_priority_order, top_band
from serving.web.reasons import PlanSuggestion, Reason, leading_outcome, main_reason, suggested_plan

#: List orders: who first today (both outcomes, :mod:`serving.priority`), or one outcome's rank.
SORTS = ("priority", *OUTCOMES, "person")


@dataclass(frozen=True)
class Filters:
    sort: str = "priority"
    bands: tuple[str, ...] = ()
    alert: str = ""
    cohort: str = ""
    q: str = ""  # part of a person id (search), case-insensitive

    def query(self, **extra: str) -> str:
        """The filters as a query string (for links that keep them)."""
        parts = [("sort", "" if self.sort == "priority" else self.sort)]
        parts += [*(("band", b) for b in self.bands)]
        parts += [("alert", self.alert), ("cohort", self.cohort), ("q", self.q)]
        parts += [*extra.items()]
        return urlencode([(k, v) for k, v in parts if v])

    def sorted_by(self, sort: str) -> str:
        """The query string of the same filters in another order (column headers)."""
        return replace(self, sort=sort).query()


def parse_filters(q: QueryParams) -> Filters:
    sort = q.get("sort", "")
    if sort not in SORTS:  # ``outcome=`` (the older link) ranks by that outcome
        outcome = q.get("outcome", "")
        sort = outcome if outcome in OUTCOMES else "priority"
    alert = q.get("alert", "")
    cohort = q.get("cohort", "")
    return Filters(
        sort=sort,
        bands=tuple(b for b in BAND_CODES if b in q.getlist("band")),
        alert=alert if alert == "any" or alert in ALERT_BITS else "",
        cohort=cohort if cohort in COHORT_BITS else "",
        q="".join(ch for ch in q.get("q", "") if ch.isprintable()).strip()[:64],
    )


@dataclass
class Row:
    """One person of the list: both outcomes' stored items, the reason, plan and alerts."""

    position: int
    person_id: str
    items: Mapping[str, Mapping[str, Any]]
    lead: str
    reason: Reason | None
    plan: list[PlanSuggestion]
    alerts: list[dict[str, Any]]

    @property
    def top_band(self) -> int:
        return top_band(self.items)


@dataclass
class Since:
    """What changed since the previous run, for the rows shown (list and person page)."""

    band_up: list[str] = field(default_factory=list)
    band_down: list[str] = field(default_factory=list)
    first_scored: list[str] = field(default_factory=list)
    new_alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    new_events: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any((self.band_up, self.band_down, self.new_alerts, self.new_events))


@dataclass
class ListPage:
    run: queries.Run
    previous: queries.Run | None
    total: int
    rows: list[Row] = field(default_factory=list)
    since: Since = field(default_factory=Since)


def since_previous(
    conn: Connection, run: queries.Run, previous: queries.Run | None, rows: list[Row]
) -> Since:
    """Band changes and new alerts since ``previous``; events recorded since ``run``'s date."""
    out = Since()
    pids = [r.person_id for r in rows]
    out.new_events = queries.events_recorded_since(conn, pids, run.as_of)
    if previous is None:
        return out
    before = queries.alert_kinds(conn, previous.id, pids)
    for r in rows:
        levels = [(i.get("previous_band"), i["band"]["level"]) for i in r.items.values()]
        if all(old is None for old, _ in levels):
            out.first_scored.append(r.person_id)
        elif any(old is not None and new > old for old, new in levels):
            out.band_up.append(r.person_id)
        elif any(old is not None and new < old for old, new in levels):
            out.band_down.append(r.person_id)
        fresh = [a for a in r.alerts if a.get("kind") not in before.get(r.person_id, set())]
        if fresh:
            out.new_alerts[r.person_id] = fresh
    return out


def caseload(
    conn: Connection, who: Principal, worker_id: str, f: Filters, limit: int
) -> ListPage | None:
    """The caseload's list in the latest run, or None when it is unknown or out of scope.

    Both outcomes' stored items of every person are read (a caseload is about
    20 people), merged per person and ordered by ``f.sort``: who first today
    (:func:`serving.priority.priority_key`) or one outcome's caseload rank. A
    band filter applies to the higher band of either outcome under "who
    first", to the chosen outcome's band otherwise.
    """
    run = queries.run_for(conn, None)
    if run is None:
        return None
    cond = sa.and_(scores.c.worker_id == worker_id, who.scope_filter(scores))
    people = both_outcomes(conn, run.id, cond, f)
    if not people and not exists(conn, run.id, OUTCOMES[0], cond):
        return None
    wanted = f.q.casefold()
    chosen = [
        (pid, items)
        for pid, items in people.items()
        if _band_ok(items, f) and wanted in pid.casefold()
    ]
    if f.sort == "priority":
        ordered = in_priority_order(chosen)
    elif f.sort == "person":
        ordered = sorted(chosen, key=lambda pi: pi[0])
    else:
        far = 1 << 30
        ordered = sorted(
            chosen, key=lambda pi: (pi[1].get(f.sort, {}).get("rank_caseload", far), pi[0])
        )
    shown = ordered[:limit]
    previous = queries.previous_run(conn, run)
    rows = rows_for(conn, run.id, shown, f.sort)
    return ListPage(run, previous, len(ordered), rows, since_previous(conn, run, previous, rows))


def both_outcomes(
    conn: Connection, run_id: int, cond: sa.ColumnElement[bool], f: Filters | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every person matching ``cond`` in the run: person_id -> outcome -> stored item."""
    people: dict[str, dict[str, dict[str, Any]]] = {}
    for outcome in OUTCOMES:
        for _, raw in queries.ranked_items(
            conn,
            run_id,
            outcome,
            cond,
            "rank_caseload",
            alert=(f.alert or None) if f else None,
            cohort=(f.cohort or None) if f else None,
        ):
            item = orjson.loads(raw)
            people.setdefault(item["person_id"], {})[outcome] = item
    return people


def rows_for(
    conn: Connection,
    run_id: int,
    shown: list[tuple[str, Mapping[str, Mapping[str, Any]]]],
    sort: str = "priority",
) -> list[Row]:
    """List rows of ``shown`` (in that order): reason, plan items and alerts of each."""
    pids = [pid for pid, _ in shown]
    bodies = queries.explanations_of(conn, run_id, pids)
    messages = alert_messages(conn, run_id, pids)
    rows = []
    for n, (pid, items) in enumerate(shown, start=1):
        drivers = {o: bodies[(pid, o)]["drivers"] for o in items if (pid, o) in bodies}
        lead = sort if sort in items else leading_outcome(items)
        alerts_now = messages.get(pid, [])
        bands = {o: i["band"] for o, i in items.items()}
        rows.append(
            Row(
                n,
                pid,
                items,
                lead,
                main_reason(drivers, lead),
                suggested_plan(drivers, bands, alerts_now),
                alerts_now,
            )
        )
    return rows


def _band_ok(items: Mapping[str, Mapping[str, Any]], f: Filters) -> bool:
    if not f.bands:
        return True
    levels = {BAND_CODES[b] for b in f.bands}
    if f.sort not in OUTCOMES:
        return top_band(items) in levels
    item = items.get(f.sort)
    return item is not None and int(item["band"]["level"]) in levels


def exists(conn: Connection, run_id: int, outcome: str, cond: sa.ColumnElement[bool]) -> bool:
    row = conn.execute(
        sa.select(scores.c.person_id)
        .where(scores.c.run_id == run_id, scores.c.outcome == outcome, cond)
        .limit(1)
    ).first()
    return row is not None


def alert_messages(
    conn: Connection, run_id: int, person_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each listed person's stored alert messages (zh/en), by person id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for lo in range(0, len(person_ids), 500):
        rows = conn.execute(
            sa.select(alerts.c.person_id, alerts.c.body)
            .where(alerts.c.run_id == run_id, alerts.c.person_id.in_(person_ids[lo : lo + 500]))
            .order_by(alerts.c.person_id, alerts.c.kind)
        )
        for pid, body in rows:
            out.setdefault(pid, []).append(orjson.loads(body))
    return out
