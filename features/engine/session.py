"""A feature session: persons and events coded once, the explicit handle of every engine call.

Contract::

    with Session.open(persons, events) as session:      # frames or Parquet paths
        rows = session.rows(entities)                   # person_id, as_of -> EntityRows
        got = get_historical_features(session, entities)  # features.engine

:meth:`Session.open` codes both sources once (:mod:`features.engine.records`);
:meth:`Session.rows` validates entity rows (both columns present, every as_of
a date, every person known) and maps them to person indices and local-time
microseconds. The SQL backend and the derived loss-of-contact label read the
DuckDB connection of :meth:`Session.sql`, created on first use with the
relations ``per`` (persons) and ``ev`` (coded events with corrections,
:mod:`features.engine.sql_events`) and owned by the session: :meth:`close`
(or leaving the ``with`` block) closes it. A session holds what it holds as
attributes; nothing is kept in module-level state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import duckdb
import numpy as np
import pandas as pd

from features.contract import LOCAL_TZ
from features.engine.records import Events, Persons, code_events, code_persons
from features.engine.sql_events import attach_events

Source = pd.DataFrame | str | Path


@dataclass(frozen=True)
class EntityRows:
    """Entity rows as the backends read them: person id, person index, as_of (µs)."""

    person: np.ndarray  # object: person_id per row
    pidx: np.ndarray  # int: position in Session.persons
    as_us: np.ndarray  # int64: as_of, local-time microseconds

    def __len__(self) -> int:
        return len(self.pidx)

    def take(self, sl: slice) -> EntityRows:
        """Rows ``sl`` (a slice keeps views, no copies)."""
        return EntityRows(self.person[sl], self.pidx[sl], self.as_us[sl])


def as_of_micros(values: pd.Series) -> np.ndarray:
    """as_of values (dates, datetimes or ISO strings) as local-time microseconds."""
    ts = pd.to_datetime(values)
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    if ts.isna().any():
        raise ValueError("entities: as_of is missing in some rows; every row needs a date")
    return ts.astype("datetime64[us]").to_numpy().astype("int64")


def connect(
    threads: int | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB connection."""
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")  # no bars in `sunflower train` output
    return con


def register(con: duckdb.DuckDBPyConnection, name: str, source: Source) -> None:
    """Expose a canonical frame, or a Parquet file/glob, as relation ``name``."""
    if isinstance(source, pd.DataFrame):
        con.register(name, source)
    else:
        path = str(source).replace("'", "''")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet('{path}')")


class Session:
    """Coded persons and events of one job, and the SQL connection when one is used."""

    def __init__(
        self,
        persons_src: Source,
        events_src: Source,
        persons: Persons,
        events: Events,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
    ) -> None:
        self.persons_src = persons_src
        self.events_src = events_src
        self.persons = persons
        self.events = events
        self._threads = threads
        self._memory_limit = memory_limit
        self._con: duckdb.DuckDBPyConnection | None = None
        self._sql_rows: EntityRows | None = None

    @classmethod
    def open(
        cls,
        persons: Source,
        events: Source,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
    ) -> Session:
        """Code ``persons`` and ``events`` (canonical frames or Parquet paths) once."""
        coded = code_persons(persons)
        return cls(
            persons,
            events,
            coded,
            code_events(events, coded),
            threads=threads,
            memory_limit=memory_limit,
        )

    def rows(self, entities: pd.DataFrame) -> EntityRows:
        """Validated entity rows (``person_id``, ``as_of``), in the frame's order."""
        missing = {"person_id", "as_of"} - set(entities.columns)
        if missing:
            raise ValueError(
                f"entities: missing column(s) {sorted(missing)}; need person_id, as_of"
            )
        person = entities["person_id"].astype("string").to_numpy(dtype=object)
        as_us = as_of_micros(entities["as_of"])
        pidx = self.persons.index_of(person)
        unknown = np.flatnonzero(pidx < 0)
        if len(unknown):
            raise ValueError(
                f"entities: {len(unknown)} row(s) name a person_id that is not in persons "
                f"(first at position {int(unknown[0])}); load the person first"
            )
        return EntityRows(person, pidx, as_us)

    def person_rows(self, pidx: np.ndarray, as_us: np.ndarray) -> EntityRows:
        """Entity rows from person indices and as_of microseconds (already valid)."""
        return EntityRows(self.persons.ids.to_numpy()[pidx], pidx, as_us)

    @property
    def observed_until_us(self) -> int:
        """The data snapshot time: the latest recorded_at (microseconds; 0 when no events)."""
        value = self.events.max_rec
        return int(value) if value is not None else 0

    def sql(self) -> duckdb.DuckDBPyConnection:
        """The session's DuckDB connection with ``per`` and ``ev`` (created on first use)."""
        if self._con is None:
            con = connect(self._threads, self._memory_limit)
            register(con, "persons_src", self.persons_src)
            con.execute("CREATE OR REPLACE TEMP TABLE per AS SELECT * FROM persons_src")
            register(con, "events_src", self.events_src)
            attach_events(con, "events_src")
            self._con = con
        return self._con

    def sql_entities(self, rows: EntityRows) -> duckdb.DuckDBPyConnection:
        """:meth:`sql` with ``ent_all(row_id, person_id, as_us)`` holding ``rows``."""
        con = self.sql()
        if self._sql_rows is not rows:
            frame = pd.DataFrame(
                {
                    "row_id": np.arange(len(rows), dtype="int64"),
                    "person_id": rows.person,
                    "as_us": rows.as_us,
                }
            )
            con.register("ent_src", frame)
            con.execute("CREATE OR REPLACE TEMP TABLE ent_all AS SELECT * FROM ent_src")
            con.unregister("ent_src")
            self._sql_rows = rows
        return con

    def close(self) -> None:
        """Close the SQL connection, if one was opened."""
        if self._con is not None:
            self._con.close()
            self._con = None
            self._sql_rows = None

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
