"""The audit log: who (account, role) did what, to which person, when.

Contract: every person-level read, explanation lookup, what-if, export and
recorded action is appended before its response is sent. :class:`AuditWriter`
does this with *group commit*: a request hands its entries to one writer
thread and awaits the commit; the thread writes whatever has queued up in one
transaction, so a busy server commits many reads at once and the event loop
never waits on a database lock (SQLite has one writer). If the write fails the
request fails — nothing is shown that was not logged. :func:`append` is the
synchronous form (CLI, jobs, tests). The table is append-only at the database
level (triggers, see the migration); :func:`query` is the admins' read.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.contract import local_now
from serving.auth import Principal
from serving.db import audit_log

_BATCH = 1000
_COLUMNS = ("at", "user_id", "username", "role", "action", "person_id", "detail")
_INSERT = f"INSERT INTO audit_log ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 7)})"
_INSERT_PG = _INSERT.replace("?", "%s")


def _sqlite_time(at: datetime) -> str:
    """The text form SQLAlchemy's SQLite dialect stores and parses."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class Entry:
    """One audit line."""

    who: Principal
    action: str
    person_id: str | None = None
    detail: dict[str, Any] | None = None


def _rows(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    at = local_now()
    return [
        {
            "at": at,
            "user_id": e.who.user_id,
            "username": e.who.username,
            "role": e.who.role,
            "action": e.action,
            "person_id": e.person_id,
            "detail": orjson.dumps(e.detail).decode() if e.detail else None,
        }
        for e in entries
    ]


def append(conn: Connection, entries: Sequence[Entry]) -> None:
    """Write entries inside the caller's transaction."""
    if entries:
        conn.execute(audit_log.insert(), _rows(entries))


_Waiter = tuple[list[Entry], asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class AuditWriter:
    """One background thread that commits queued audit entries in batches."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._raw: Any = None
        self._queue: queue.Queue[_Waiter | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    async def record(self, *entries: Entry) -> None:
        """Append entries; returns once they are committed (raises if they were not)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put((list(entries), loop, done))
        await done

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)
        if self._raw is not None:
            try:
                self._raw.close()
            except Exception:  # owned by the (finished) writer thread
                pass
            self._raw = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < _BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Waiter]) -> None:
        error: BaseException | None = None
        try:
            self._insert([e for entries, _, _ in batch for e in entries])
        except Exception as exc:  # reported to every waiting request
            error = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, loop, fut in batch:
            by_loop.setdefault(loop, []).append(fut)
        for loop, futures in by_loop.items():
            loop.call_soon_threadsafe(_settle, futures, error)

    def _insert(self, entries: list[Entry]) -> None:
        """One transaction on the writer's own DB-API connection (prepared INSERT)."""
        if self._raw is None:
            self._raw = self._engine.raw_connection()
        raw = self._raw
        postgres = self._engine.dialect.name == "postgresql"
        rows = [
            (r["at"] if postgres else _sqlite_time(r["at"]), *list(r.values())[1:])
            for r in _rows(entries)
        ]
        try:
            cur = raw.cursor()
            cur.executemany(_INSERT_PG if postgres else _INSERT, rows)
            cur.close()
            raw.commit()
        except Exception:
            try:
                raw.rollback()
            except Exception:  # the connection itself is gone: open a new one next time
                pass
            raw.invalidate()
            self._raw = None
            raise


class AuditWriteFailed(RuntimeError):
    """The audit entries of a request were not committed (the cause is attached)."""


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            failed = AuditWriteFailed("audit log write failed")
            failed.__cause__ = error  # busy or broken: the error handler tells which
            fut.set_exception(failed)


def query(
    engine: Engine,
    *,
    person_id: str | None = None,
    username: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """Matching entries, newest first, and how many match in all."""
    conds = []
    if person_id is not None:
        conds.append(audit_log.c.person_id == person_id)
    if username is not None:
        conds.append(audit_log.c.username == username)
    if action is not None:
        conds.append(audit_log.c.action == action)
    if since is not None:
        conds.append(audit_log.c.at >= since)
    if until is not None:
        conds.append(audit_log.c.at < until)
    where = sa.and_(sa.true(), *conds)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(where))
        rows = conn.execute(
            sa.select(audit_log)
            .where(where)
            .order_by(audit_log.c.id.desc())
            .limit(limit)
            .offset(offset)
        ).mappings()
        out = [{**r, "detail": orjson.loads(r["detail"]) if r["detail"] else None} for r in rows]
        return int(total.scalar_one()), out
