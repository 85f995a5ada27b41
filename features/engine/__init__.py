"""The point-in-time feature engine: one call, an explicit session, two backends.

Public API::

    with Session.open(persons, events) as session:
        got = get_historical_features(session, entities)     # Evaluated: features, status
        got = get_historical_features(session, entities, backend="sql")   # the reference
    build_features(entities, persons=..., events=...)       # keys + features, one call
    build_cohort(entities, persons=..., events=...)         # keys + in_cohort, status

A backend is a :class:`~features.engine.protocol.Backend`; :data:`BACKENDS`
names them. The daily job, the training panel (:mod:`features.jobs`), labels
and ad-hoc scoring all go through this package.

Design
------
*The catalog is the source of truth.* ``catalog.yaml`` declares every
feature; :mod:`features.engine.array_backend` compiles it into array passes and
:mod:`features.engine.sql_backend` compiles the same entries into one DuckDB query (the
declarative reference, and the dialect Spark SQL shares for the
country-scale case, DESIGN §7). Adding a feature is one YAML entry (plus, for
a new *kind*, one branch in each compiler; the cross-check test keeps them
equal).

*The point-in-time join* (Feast's ``get_historical_features``): each entity
row has its own ``as_of``; an event counts when ``recorded_at < as_of`` —
knowledge time, not event time, so a lab result for a sample taken last week
but recorded tomorrow is invisible today — and no correction of it was
recorded before as_of (:mod:`features.engine.sql_events`). Windows then filter on
``ts``. A daily run (one as_of for everyone) and a training panel (many as_of
per person) are the same call.

*Why numpy, not a SQL engine, for the hot path.* The job is one big
join-and-aggregate of every entity row against its person's events, with
~60 distinct aggregates. In DuckDB the per-row hash aggregate with one
filtered aggregate per (filter, window) dominated (72-170 s for one as_of
over 50 M events). Coding the events once (:mod:`features.engine.records`: int32
person index, int8 type/result codes, int64 microsecond times, grouped by
person) turns the join into offset arithmetic and the aggregates into one
scatter-add over (row, atom, age bucket) and one scatter-max per (row, atom)
— see :mod:`features.engine.array_backend`. A 34-feature prototype had measured 7 s / 1.0 GB
in DuckDB, 9 s / 2.2 GB in Polars and 22 s / 6.5 GB in pandas; the full
catalog in numpy is in the same range (figures in docs/features.md).

*State.* A :class:`~features.engine.session.Session` codes persons and events
once and is passed explicitly to every call; it owns the DuckDB connection the
SQL backend and the derived loss-of-contact label use, created only when one
of them needs it. Nothing is kept in module-level state.

*Output.* One row per entity row, in the input order: the catalog's columns
(int32 counts and days, 0/1 int8 flags and one-hots, float64 sums and trends)
and, apart, each row's cohort status; :func:`build_features` puts the keys
``person_id``, ``as_of`` in front and keeps the input index.
"""

from __future__ import annotations

import pandas as pd

from features.catalog import AlertSettings, Catalog, load_catalog
from features.config import LabelConfig, load_label_config
from features.engine.array_backend import ArrayBackend
from features.engine.protocol import (
    CHUNK_ROWS,
    NO_TIME,
    STATUS_NAMES,
    Alerts,
    Backend,
    Evaluated,
)
from features.engine.session import EntityRows, Session, Source
from features.engine.sql_backend import SqlBackend

#: The engine's backends by name (Spark joins here).
BACKENDS: dict[str, Backend] = {"array": ArrayBackend(), "sql": SqlBackend()}

__all__ = [
    "BACKENDS",
    "CHUNK_ROWS",
    "NO_TIME",
    "STATUS_NAMES",
    "Alerts",
    "Backend",
    "EntityRows",
    "Evaluated",
    "Session",
    "Source",
    "build_cohort",
    "build_features",
    "get_historical_features",
]


def get_historical_features(
    session: Session,
    entities: pd.DataFrame | EntityRows,
    *,
    catalog: Catalog | None = None,
    config: LabelConfig | None = None,
    backend: str = "array",
    cohort_only: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    alerts: bool | AlertSettings = False,
) -> Evaluated:
    """Features and cohort status at each entity row's as_of (Feast's offline-store call).

    ``entities`` has ``person_id`` and ``as_of`` (one as_of per row), or is
    :class:`EntityRows` already. Only events recorded before a row's as_of and
    not corrected by then are used. ``alerts`` (True: the catalog's
    ``alert_settings``, or other thresholds) adds the catalog's alerts and
    cohort flags, computed in the same pass.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown engine backend {backend!r}; choose one of {sorted(BACKENDS)}")
    rows = entities if isinstance(entities, EntityRows) else session.rows(entities)
    catalog = catalog or load_catalog()
    settings = catalog.alert_settings if alerts is True else alerts or None
    return BACKENDS[backend].evaluate(
        session,
        rows,
        catalog,
        config or load_label_config(),
        cohort_only=cohort_only,
        chunk_rows=chunk_rows,
        alerts=settings,
    )


def _keys(entities: pd.DataFrame) -> pd.DataFrame:
    return entities[["person_id", "as_of"]].copy()


def build_features(
    entities: pd.DataFrame,
    *,
    persons: Source,
    events: Source,
    catalog: Catalog | None = None,
    config: LabelConfig | None = None,
    session: Session | None = None,
    backend: str = "array",
) -> pd.DataFrame:
    """Point-in-time features: one row per entity row, same order and index.

    ``entities`` has ``person_id`` and ``as_of`` (one as_of per row). Only events
    with ``recorded_at < as_of`` are used. Columns: person_id, as_of, then
    :meth:`Catalog.features` in order. ``session`` reuses coded data (then
    ``persons``/``events`` are not read again).
    """
    own = session is None
    s = session or Session.open(persons, events)
    try:
        got = get_historical_features(s, entities, catalog=catalog, config=config, backend=backend)
    finally:
        if own:
            s.close()
    frame = got.features.set_axis(entities.index)
    return pd.concat([_keys(entities), frame], axis=1)


def build_cohort(
    entities: pd.DataFrame,
    *,
    persons: Source,
    events: Source,
    config: LabelConfig | None = None,
    session: Session | None = None,
) -> pd.DataFrame:
    """Cohort membership at each row's as_of (knowledge time): in_cohort and status.

    status is one of active, not_started, ended (planned end passed), exited,
    custody, lost_contact, transferred_out; ``in_cohort`` is status == active.
    """
    s = session or Session.open(persons, events)
    got = get_historical_features(s, entities, config=config, cohort_only=True)
    if session is None:
        s.close()
    out = _keys(entities)
    out["in_cohort"] = got.in_cohort
    out["status"] = got.status
    return out
