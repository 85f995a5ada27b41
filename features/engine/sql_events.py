"""Events as the engine reads them: integer codes, microsecond times, corrections.

Contract: :func:`attach_events` turns a canonical events relation into the view
``ev(person_id, ts_us, rec_us, sup_us, tc, rc, value, place)`` on DuckDB;
:func:`raw_query`, :data:`SUP_QUERY` and :func:`ev_query` are its three steps in
any :class:`~features.engine.dialect.Dialect` (:mod:`features.engine.spark`
runs them on Spark).

Corrections. ``event_id`` is the dedup key (loading an id twice is a no-op),
so a correction arrives as a *new* event for the same person, type and ``ts``
recorded later — a lab that re-reads a sample, a worker who fixes a check-in
marked missed by mistake. Rule: an event is superseded by any event of the
same (person_id, type, ts) with a strictly later ``recorded_at``; ``sup_us``
is the earliest such ``recorded_at`` (``MAX`` when none). At as_of an event
counts when ``rec_us < as_of <= sup_us``: before the correction was known the
original counts, afterwards only the correction does — what a worker saw on
each day is reproducible. Labels, built in hindsight, use final versions
(``sup_us = MAX``). Events recorded at the same instant never supersede each
other (both count). There is no retraction: to undo an event, send a
correction of it.

Only late-recorded events (``recorded_at > ts``) can correct another one
(a correction is recorded after an original that was recorded no earlier than
``ts``), so the self-join is limited to those.
"""

from __future__ import annotations

import duckdb

from features.engine.codes import MAX_US, result_code_sql, type_code_sql
from features.engine.dialect import DUCKDB, Dialect

#: The place a result names — the text after its last ``@``, spaces trimmed, NULL when
#: none (:func:`features.contract.split_purchase`; the array engine hashes the same
#: text) — in SQL that DuckDB and Spark both read: ``[^@]`` keeps the match after the
#: last ``@``, the lazy group leaves the trailing spaces to `` *$``.
PLACE_SQL = (
    "CASE WHEN e.result LIKE '%@%' THEN"
    " nullif(regexp_extract(e.result, '@ *([^@]*?) *$', 1), '') END"
)


def raw_query(source: str, d: Dialect = DUCKDB) -> str:
    """``ev_raw``: the canonical events of ``source`` with microsecond times."""
    return f"""
SELECT CAST(person_id AS {d.string}) AS person_id,
       CAST(type AS {d.string}) AS type,
       {d.epoch_us("ts")} AS ts_us,
       {d.epoch_us("coalesce(recorded_at, ts)")} AS rec_us,
       CAST(result AS {d.string}) AS result,
       CAST(value AS DOUBLE) AS value
FROM {source}
"""


#: ``sup``: each superseded event version of ``ev_raw`` and when it was superseded.
SUP_QUERY = """
WITH late AS (SELECT person_id, type, ts_us, rec_us FROM ev_raw WHERE rec_us > ts_us)
SELECT e.person_id, e.type, e.ts_us, e.rec_us, min(l.rec_us) AS sup_us
FROM ev_raw e JOIN late l
  ON l.person_id = e.person_id AND l.type = e.type AND l.ts_us = e.ts_us AND l.rec_us > e.rec_us
GROUP BY ALL
"""


def ev_query(d: Dialect = DUCKDB, *, corrections: bool = True) -> str:
    """``ev``: coded events with ``sup_us`` (``MAX_US`` when not superseded).

    ``corrections=False`` when ``sup`` is empty: no join.
    """
    codes = (
        f"{type_code_sql('e.type', d.code)} AS tc, {result_code_sql('e.result', d.code)} AS rc,"
        f" e.value, {PLACE_SQL} AS place"
    )
    if not corrections:
        return f"""
SELECT e.person_id, e.ts_us, e.rec_us, CAST({MAX_US} AS BIGINT) AS sup_us, {codes}
FROM ev_raw e
"""
    return f"""
SELECT e.person_id, e.ts_us, e.rec_us, coalesce(s.sup_us, {MAX_US}) AS sup_us, {codes}
FROM ev_raw e LEFT JOIN sup s
  ON s.person_id = e.person_id AND s.type = e.type AND s.ts_us = e.ts_us AND s.rec_us = e.rec_us
"""


def attach_events(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Create ``sup`` (superseded event versions) and the ``ev`` view over ``source``."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW ev_raw AS {raw_query(source)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE sup AS {SUP_QUERY}")
    n_sup = con.execute("SELECT count(*) FROM sup").fetchone()[0]  # type: ignore[index]
    con.execute(f"CREATE OR REPLACE TEMP VIEW ev AS {ev_query(corrections=bool(n_sup))}")
