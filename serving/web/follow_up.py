"""The follow-up list (跟进清单): every open plan item of a caseload, with a due date.

Contract: :func:`follow_up` takes the caseload's rows of today's list (who
first today, :mod:`serving.web.listing`) and each suggested plan item's last
recorded action, and returns the open items, earliest due first:

* an item is **closed** when its last record is 已完成 or 不适合 within the last
  :data:`CLOSED_FOR` days (after that a still-suggested item opens again);
* it is **due** :data:`DUE_DAYS` after its start, by the person's higher band
  (极高 1 day, 高 3, 中 7, 低 14); the start is the day of the last 未完成
  record, else the run's date (the item is suggested in today's run);
* it is **overdue** when the due date is before today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from serving import queries
from serving.web.reasons import PlanSuggestion

from .listing import Row

DUE_DAYS = {4: 1, 3: 3, 2: 7, 1: 14}
CLOSED_FOR = 30


@dataclass
class FollowUp:
    row: Row
    item: PlanSuggestion
    due: date
    last: dict[str, Any] | None

    def overdue(self, today: date) -> bool:
        return self.due < today


def follow_up(conn: Connection, run_date: date, rows: list[Row], today: date) -> list[FollowUp]:
    last = queries.last_plan_actions(conn, [r.person_id for r in rows])
    out = []
    for r in rows:
        for item in r.plan:
            record = last.get((r.person_id, item.id))
            start = run_date
            if record is not None:
                on = record["at"].date()
                closed = record["status"] in ("done", "not_suitable")
                if closed and (today - on).days <= CLOSED_FOR:
                    continue
                if record["status"] == "not_done":
                    start = on
            due = start + timedelta(days=DUE_DAYS[r.top_band])
            out.append(FollowUp(r, item, due, record))
    return sorted(out, key=lambda f: (f.due, f.row.position))
