"""Data of the list pages: a caseload's stored list items, filtered, with alert messages.

Contract: :func:`parse_filters` reads the list filters from a query string
(unknown values fall back to the defaults, never to an error page).
:func:`caseload` returns the published run and the caseload's items exactly
as the scoring job stored them (the same rows the API's
``/risk-lists/workers/{id}`` returns), with each person's alert messages;
scope is applied in SQL with :meth:`serving.auth.Principal.scope_filter`, so
a caseload outside the caller's scope is reported like an unknown one (None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.datastructures import QueryParams

from serving import queries
from serving.alerts import ALERT_BITS, COHORT_BITS
from serving.auth import Principal
from serving.bands import BAND_CODES
from serving.db import alerts, scores

OUTCOMES = ("relapse", "loss_of_contact")


@dataclass(frozen=True)
class Filters:
    outcome: str = "relapse"
    bands: tuple[str, ...] = ()
    alert: str = ""
    cohort: str = ""

    def query(self, **extra: str) -> str:
        """The filters as a query string (for links that keep them)."""
        parts = [("outcome", self.outcome), *(("band", b) for b in self.bands)]
        parts += [("alert", self.alert), ("cohort", self.cohort), *extra.items()]
        return urlencode([(k, v) for k, v in parts if v])


def parse_filters(q: QueryParams) -> Filters:
    outcome = q.get("outcome", "relapse")
    alert = q.get("alert", "")
    cohort = q.get("cohort", "")
    return Filters(
        outcome=outcome if outcome in OUTCOMES else "relapse",
        bands=tuple(b for b in BAND_CODES if b in q.getlist("band")),
        alert=alert if alert == "any" or alert in ALERT_BITS else "",
        cohort=cohort if cohort in COHORT_BITS else "",
    )


@dataclass
class ListPage:
    run: queries.Run
    total: int
    items: list[dict[str, Any]]
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def caseload(
    conn: Connection, who: Principal, worker_id: str, f: Filters, limit: int
) -> ListPage | None:
    """The caseload's list in the latest run, or None when it is unknown or out of scope."""
    run = queries.run_for(conn, None)
    if run is None:
        return None
    cond = sa.and_(scores.c.worker_id == worker_id, who.scope_filter(scores))
    total, raw = queries.list_items(
        conn,
        run.id,
        f.outcome,
        cond,
        "rank_caseload",
        bands=list(f.bands) or None,
        alert=f.alert or None,
        cohort=f.cohort or None,
        limit=limit,
    )
    if total == 0 and not exists(conn, run.id, f.outcome, cond):
        return None
    items = [orjson.loads(r) for r in raw]
    return ListPage(
        run, total, items, alert_messages(conn, run.id, [i["person_id"] for i in items])
    )


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
