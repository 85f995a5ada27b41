"""Readers behind the busiest routes: risk lists, stored explanations, one-row ad-hoc scoring.

Contract: :class:`StoredReader` reads with plain DB-API calls on one long-lived
connection per thread (no SQLAlchemy expression building, no pool checkout per
request); SQL text is built once per query *shape* and reused, so SQLite's
statement cache and psycopg's automatic server-side prepare both apply. The
async functions below are the whole logic of their routes — scope, 404s,
audit (awaited, committed before the answer), JSON bytes — and are called
both by the FastAPI routes and by :mod:`serving.api.front_door`, so the two entry
points cannot drift apart. Nothing here touches pandas.

Published runs never change (a rerun writes a new run id), so stored list
items and explanations are served as the JSON text the scoring job wrote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from features.config import OUTCOMES
from serving import queries
from serving.api.adhoc import FieldErrors, one_row, row_vector, score_row
from serving.api.errors import ApiError, not_found
from serving.audit import Entry
from serving.auth import Principal
from serving.bands import BAND_CODES
from serving.champions import ModelsNotReady
from serving.flags import ALERT_BITS, COHORT_BITS
from serving.priority import in_priority_order

#: A page size no list reaches (a whole district's scope in one read).
PAGE_ALL = 10_000_000
#: Columns a list scope may constrain, and the rank columns lists sort by.
SCOPE_COLUMNS = frozenset({"worker_id", "district", "town"})
RANKS = frozenset({"rank_caseload", "rank_town", "rank_district"})

Eqs = tuple[tuple[str, str], ...]


def scope_eqs(who: Principal) -> Eqs | None:
    """The caller's scope as column = value pairs (None: sees no person): the one rule,
    :meth:`serving.auth.Principal.scope_eqs`."""
    return who.scope_eqs()


@dataclass(frozen=True, slots=True)
class ListArgs:
    """A list request's filters and page (already validated)."""

    day: date | None = None
    outcome: str = "relapse"
    bands: tuple[str, ...] = ()
    alert: str | None = None
    any_alert: bool = False
    cohort: str | None = None
    limit: int = 25
    offset: int = 0
    #: "rank" (the outcome's rank) or "priority" (who first today, both outcomes:
    #: :mod:`serving.priority`)
    order: str = "rank"


class StoredReader:
    """DB-API reads of the stored runs: a connection per thread, SQL per shape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []
        self._sql: dict[Any, str] = {}
        self._url = str(engine.url)

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.engine.raw_connection()
            if self.postgres:
                conn.driver_connection.autocommit = True  # type: ignore[union-attr]
            self._local.conn = conn
            with self._lock:
                self._open.append(conn)
        return conn.driver_connection

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._open:
                    self._open.remove(conn)
            try:
                conn.invalidate()
            except Exception:  # already broken
                pass

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one SELECT; a broken connection is replaced and the query retried once."""
        if self.postgres:
            sql = sql.replace("?", "%s")
        for attempt in (0, 1):
            try:
                return list(self._connection().execute(sql, params).fetchall())
            except Exception as exc:
                if attempt or not _is_disconnect(exc):
                    raise
                self._drop()
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            open_, self._open = self._open, []
        for conn in open_:
            try:
                if self.postgres:  # back to the pool as SQLAlchemy expects it
                    conn.driver_connection.autocommit = False
                conn.close()
            except Exception:  # a connection of another thread, or already gone
                pass

    # --- runs ---------------------------------------------------------------

    def run(self, day: date | None) -> queries.Run | None:
        """The published run of ``day`` (latest when None); shares queries' 1 s cache."""
        key = (self._url, day)
        hit = queries._runs.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        sql = "SELECT id, as_of FROM score_runs WHERE status = 'published'"
        params: tuple[Any, ...] = ()
        if day:
            sql += " AND as_of = ?"
            params = (day if self.postgres else day.isoformat(),)
        found = self.rows(sql + " ORDER BY as_of DESC LIMIT 1", params)
        run = None
        if found:
            rid, as_of = found[0]
            run = queries.Run(int(rid), as_of if isinstance(as_of, date) else _date(as_of))
        if len(queries._runs) > 1000:
            queries._runs.clear()
        queries._runs[key] = (run, now + queries._RUN_TTL)
        return run

    def need_run(self, day: date | None) -> queries.Run:
        run = self.run(day)
        if run is None:
            what = f"for {day}" if day else "yet"
            raise ApiError(404, "no_run", f"no published scoring run {what}; run `sunflower score`")
        return run

    # --- lists ----------------------------------------------------------------

    def _where(self, cols: tuple[str, ...], n_bands: int, alert: str | None, cohort: bool) -> str:
        key = ("where", cols, n_bands, alert, cohort)
        sql = self._sql.get(key)
        if sql is None:
            parts = ["run_id = ?", "outcome = ?"]
            parts += [f"{c} = ?" for c in cols]
            if n_bands:
                parts.append(f"band IN ({', '.join('?' * n_bands)})")
            if alert == "any":
                parts.append("alert_mask != 0")
            elif alert:
                parts.append("(alert_mask & ?) != 0")
            if cohort:
                parts.append("(cohort_mask & ?) != 0")
            sql = self._sql[key] = " AND ".join(parts)
        return sql

    def list_page(
        self, run_id: int, eqs: Eqs, rank: str, args: ListArgs, limit: int
    ) -> tuple[int, list[str]]:
        """(total matching, stored items of the page as JSON text)."""
        if rank not in RANKS or any(c not in SCOPE_COLUMNS for c, _ in eqs):
            raise ValueError("unknown rank or scope column")
        alert = "any" if args.any_alert else args.alert
        where = self._where(tuple(c for c, _ in eqs), len(args.bands), alert, bool(args.cohort))
        params: list[Any] = [run_id, args.outcome, *(v for _, v in eqs)]
        params += [BAND_CODES[b] for b in args.bands]
        if alert and alert != "any":
            params.append(ALERT_BITS[alert])
        if args.cohort:
            params.append(COHORT_BITS[args.cohort])
        total = self.rows(f"SELECT count(*) FROM scores WHERE {where}", params)[0][0]
        if not total or args.offset >= total:
            return int(total), []
        items = self.rows(
            f"SELECT item FROM scores WHERE {where} ORDER BY {rank}, person_id LIMIT ? OFFSET ?",
            [*params, limit, args.offset],
        )
        return int(total), [r[0] for r in items]

    def scope_has_anyone(self, run_id: int, outcome: str, eqs: Eqs) -> bool:
        where = self._where(tuple(c for c, _ in eqs), 0, None, False)
        found = self.rows(
            f"SELECT 1 FROM scores WHERE {where} LIMIT 1", [run_id, outcome, *(v for _, v in eqs)]
        )
        return bool(found)

    # --- one person -----------------------------------------------------------

    def person_scope(self, person_id: str) -> tuple[str, str, str] | None:
        found = self.rows(
            "SELECT worker_id, district, town FROM persons WHERE person_id = ?", (person_id,)
        )
        if not found:
            return None
        w, d, t = found[0]
        return str(w), str(d), str(t)

    def explanation(
        self, run_id: int, person_id: str, outcome: str
    ) -> tuple[tuple[str, str, str], str | None] | None:
        """(the person's worker/district/town, stored body or None), or None if no person."""
        found = self.rows(
            "SELECT p.worker_id, p.district, p.town, e.body FROM persons p "
            "LEFT JOIN explanations e ON e.run_id = ? AND e.person_id = p.person_id "
            "AND e.outcome = ? WHERE p.person_id = ?",
            (run_id, outcome, person_id),
        )
        if not found:
            return None
        w, d, t, body = found[0]
        return (w, d, t), body


def _date(text: Any) -> date:
    return date.fromisoformat(str(text)[:10])


def _is_disconnect(exc: Exception) -> bool:
    name = type(exc).__name__
    return name in {"OperationalError", "InterfaceError"} and "lock" not in str(exc).lower()


def json_bytes(head: dict[str, Any], key: str, raw_items: list[str]) -> bytes:
    """``head`` plus a list of already-serialised JSON objects under ``key``."""
    start = orjson.dumps(head)[:-1]
    return start + b',"' + key.encode() + b'":[' + ",".join(raw_items).encode() + b"]}"


async def risk_list(
    state: Any, who: Principal, args: ListArgs, scope_name: str, cond: Eqs, rank: str
) -> bytes:
    """A list page as JSON bytes; 404 when the scope is unknown or out of reach."""
    reader: StoredReader = state.reader
    mine = scope_eqs(who)
    run = reader.need_run(args.day)
    limit = min(args.limit, state.settings.page_max)
    if mine is None:
        raise not_found("list")
    eqs = tuple(dict.fromkeys(cond + mine))
    if args.order == "priority":
        total, items = _priority_page(reader, run.id, eqs, rank, args, limit)
    else:
        total, items = reader.list_page(run.id, eqs, rank, args, limit)
    if total == 0 and not reader.scope_has_anyone(run.id, args.outcome, eqs):
        raise not_found("list")
    await state.audit.record(
        Entry(who, "risk_list", None, {"scope": scope_name, "run_id": run.id, "n": len(items)})
    )
    head = {
        "run_id": run.id,
        "as_of": run.as_of.isoformat(),
        "outcome": args.outcome,
        "scope": scope_name,
        "total": total,
        "limit": limit,
        "offset": args.offset,
    }
    return json_bytes(head, "items", items)


def _priority_page(
    reader: StoredReader, run_id: int, eqs: Eqs, rank: str, args: ListArgs, limit: int
) -> tuple[int, list[str]]:
    """The matching items of ``args.outcome`` in who-first order (:mod:`serving.priority`),
    judged on both outcomes of each person, then paged."""
    everyone = ListArgs(day=args.day, limit=PAGE_ALL)
    both: dict[str, dict[str, Any]] = {}
    for outcome in OUTCOMES:
        _, texts = reader.list_page(run_id, eqs, rank, replace(everyone, outcome=outcome), PAGE_ALL)
        for text in texts:
            item = orjson.loads(text)
            both.setdefault(item["person_id"], {})[outcome] = item
    total, matching = reader.list_page(run_id, eqs, rank, replace(args, offset=0), PAGE_ALL)
    by_person = {orjson.loads(t)["person_id"]: t for t in matching}
    ordered = in_priority_order((pid, both[pid]) for pid in by_person)
    return total, [by_person[pid] for pid, _ in ordered[args.offset : args.offset + limit]]


async def explanation(
    state: Any, who: Principal, person_id: str, outcome: str, day: date | None
) -> bytes:
    """The stored explanation of ``person_id``'s score in the run of ``day`` (latest)."""
    reader: StoredReader = state.reader
    if not who.reads_persons:
        raise not_found()
    run = reader.run(day)
    if run is None:
        place = reader.person_scope(person_id)
        if place is None or not who.sees(*place):
            raise not_found()
        reader.need_run(day)
        raise AssertionError("unreachable")
    found = reader.explanation(run.id, person_id, outcome)
    if found is None or not who.sees(*found[0]):
        raise not_found()
    body = found[1]
    if body is None:
        raise ApiError(404, "not_scored", f"{person_id} was not scored in the run of {run.as_of}")
    await state.audit.record(
        Entry(who, "explanation", person_id, {"run_id": run.id, "outcome": outcome})
    )
    head = orjson.dumps({"run_id": run.id, "as_of": run.as_of.isoformat()})[:-1]
    return head + b"," + body.encode()[1:]


async def score_features(
    state: Any, who: Principal, features: dict[str, float], outcomes: Sequence[str] | None
) -> bytes:
    """Score and explain one feature row with the loaded champions; store only an audit line."""
    try:
        champions = [state.champions.get(o) for o in dict.fromkeys(outcomes or OUTCOMES)]
    except ModelsNotReady as exc:
        raise ApiError(503, "models_not_ready", str(exc)) from exc
    results = []
    rows: dict[tuple[str, ...], Any] = {}  # champions usually share their feature list
    try:
        for champ in champions:
            names = tuple(champ.feature_names)
            x = rows.get(names)
            if x is None:
                x = rows[names] = row_vector(names, features)
            body = score_row(champ, await one_row(champ), x)
            results.append({"run_id": None, "as_of": None, "person_id": None, **body})
    except FieldErrors as exc:
        raise ApiError(
            422, "invalid_request", "feature row does not fit the model", exc.fields
        ) from exc
    await state.audit.record(Entry(who, "score_features"))
    return orjson.dumps({"person_id": None, "as_of": None, "results": results, "stored": False})
