"""The daily scoring job: everyone in the cohort at a date, both outcomes, stored.

Contract: :func:`score_date` takes the service database, a date and one
champion per outcome, and publishes a *scoring run*: per person and outcome
the calibrated probability, band, rank in caseload / town / district (ties
broken by person_id), change since the previous published run, the top-5
drivers with sentences, plan items and model version (``scores`` holds the
list row, pre-serialised; ``explanations`` the explanation body), the feature
vector (``feature_rows``, for what-if), rule-based alerts (``alerts``) and the
KPIs per town (``town_kpis``).

Everything is computed first; then ONE transaction marks the date's previous
run ``replaced`` and writes the new run as ``published``. A run is published
whole or not at all: a crash or kill before the commit leaves the previous
list exactly as it was, and a rerun of the same date replaces it cleanly.

The rows themselves are rendered chunk by chunk by :class:`serving.daily.run_rows.RunRows`
while the publishing transaction is open (:func:`serving.daily.publish.publish_batches`).

Features use events recorded before ``as_of`` (00:00 local on the date), so the
morning list reflects what was known at midnight (DESIGN §3).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.catalog import AlertSettings, load_catalog
from features.config import load_label_config
from features.contract import local_now
from features.engine import NO_TIME, Session, get_historical_features
from features.store import load_event_columns, load_persons
from features.targets import abstinent_3y
from models.champion import ChampionLike
from serving.bands import band_words
from serving.daily.alerts import alert_message
from serving.daily.publish import publish_batches
from serving.daily.run_rows import CHUNK, RunRows
from serving.db import migrate, score_runs
from serving.explanations import TOP_K
from serving.flags import ALERT_BITS

Progress = Callable[[str], None]


@dataclass
class RunSummary:
    """What a scoring run did."""

    run_id: int
    as_of: date
    n_persons: int
    seconds: float
    models: dict[str, dict[str, str | int | None]]
    replaced: list[int]
    alerts: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class CohortDay:
    """What the engine knows of the cohort on a day, from one pass over the events."""

    features: pd.DataFrame  # person_id + catalog features, cohort rows in person order
    status: pd.DataFrame  # person_id, worker_id, district, town, status: everyone in an agreement
    alerts: pd.DataFrame  # person_id, kind, since, days, value (cohort rows; kind order)
    cohort_mask: np.ndarray  # 一批一策 bits, aligned with ``features``


def features_at(
    persons: pd.DataFrame,
    events: pd.DataFrame,
    day: pd.Timestamp,
    settings: AlertSettings | None = None,
) -> CohortDay:
    """Features, alerts and cohort flags of the cohort at ``day``; status of everyone
    whose agreement spans it."""
    span = persons[(persons["program_start"] <= day) & (persons["program_end"] >= day)]
    entities = pd.DataFrame({"person_id": span["person_id"].to_numpy(), "as_of": day})
    with Session.open(persons, events) as session:
        got = get_historical_features(
            session, entities, config=load_label_config(), alerts=settings or True
        )
    assert got.alerts is not None
    status = span[["person_id", "worker_id", "district", "town"]].reset_index(drop=True)
    status["status"] = got.status
    keep = got.in_cohort
    ids = entities["person_id"].to_numpy()
    active = pd.concat(
        [pd.DataFrame({"person_id": ids[keep]}), got.features[keep].reset_index(drop=True)],
        axis=1,
    )
    raised = got.alerts
    shown = keep[raised.row]
    since = raised.since_us[shown]
    alerts = pd.DataFrame(
        {
            "person_id": ids[raised.row[shown]],
            "kind": raised.kind[shown],
            "since": pd.to_datetime(
                np.where(since == NO_TIME, np.datetime64("NaT"), since.astype("datetime64[us]"))
            ),
            "days": raised.days[shown],
            "value": raised.value[shown],
        }
    )
    return CohortDay(active, status, alerts, raised.cohort_mask[keep])


def previous_scores(engine: Engine, day: pd.Timestamp) -> dict[str, dict[str, tuple[float, int]]]:
    """The latest published run before ``day``: outcome -> person_id -> (p, band)."""
    with engine.connect() as conn:
        run = conn.execute(
            sa.select(score_runs.c.id)
            .where(score_runs.c.status == "published", score_runs.c.as_of < day.date())
            .order_by(score_runs.c.as_of.desc())
            .limit(1)
        ).scalar()
        if run is None:
            return {}
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        mark = "%s" if engine.dialect.name == "postgresql" else "?"
        cursor.execute(
            f"SELECT outcome, person_id, p, band FROM scores WHERE run_id = {mark}", (run,)
        )
        rows = cursor.fetchall()
        cursor.close()
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for outcome, person_id, p, band in rows:
        out.setdefault(str(outcome), {})[person_id] = (p, band)
    return out


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic collector paused: the job makes millions of acyclic objects (rows,
    dicts, strings) that reference counting frees; full collections re-scanning
    them cost seconds and free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def score_date(
    engine: Engine,
    as_of: date,
    champions: Mapping[str, ChampionLike],
    *,
    rules: AlertSettings | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Score the cohort at ``as_of`` with ``champions`` and publish the run.

    ``rules``: alert thresholds (default: the catalog's ``alert_settings``).
    """
    with _no_gc():
        return _score_date(engine, as_of, champions, rules, progress)


def _score_date(
    engine: Engine,
    as_of: date,
    champions: Mapping[str, ChampionLike],
    rules: AlertSettings | None,
    progress: Progress | None,
) -> RunSummary:
    say = progress or (lambda _msg: None)
    started, clock = time.perf_counter(), {}
    t = started
    migrate(engine)
    day = pd.Timestamp(as_of)
    say("loading persons and events")
    persons = load_persons(engine)
    events = load_event_columns(engine, recorded_before=day)
    clock["load"], t = time.perf_counter() - t, time.perf_counter()
    say("building features and alerts")
    known = features_at(persons, events, day, rules)
    feats, status, alert_rows, cohorts = (
        known.features,
        known.status,
        known.alerts,
        known.cohort_mask,
    )
    who = feats[["person_id"]].merge(
        persons[["person_id", "worker_id", "district", "town", "program_start", "program_end"]],
        on="person_id",
        how="left",
    )
    abstinent = _abstinent(persons, events, day)
    clock["features"], t = time.perf_counter() - t, time.perf_counter()
    del events
    kinds: dict[str, list[str]] = {}
    bits: dict[str, int] = {}
    alert_pairs = zip(alert_rows["person_id"].tolist(), alert_rows["kind"].tolist(), strict=True)
    for pid, kind in alert_pairs:
        kinds.setdefault(str(pid), []).append(str(kind))
        bits[str(pid)] = bits.get(str(pid), 0) + ALERT_BITS[kind]
    masks = np.array([bits.get(pid, 0) for pid in who["person_id"].tolist()], dtype=np.int64)
    clock["alerts"], t = time.perf_counter() - t, time.perf_counter()
    names = [f.name for f in load_catalog().features()]
    matrix = feats[names].to_numpy(dtype=np.float64)
    previous = previous_scores(engine, day)
    results: dict[str, Any] = {}
    for outcome, champion in champions.items():
        say(f"scoring {outcome}")
        X = np.ascontiguousarray(matrix[:, [names.index(n) for n in champion.feature_names]])
        batch = champion.explain_batch(X, TOP_K)
        if batch is None:  # a champion without the batch path: explained chunk by chunk below
            results[outcome] = (np.asarray(champion.predict(X), dtype=float), None, X)
        else:
            results[outcome] = (batch.p, batch, None)
    clock["predict_explain"], t = time.perf_counter() - t, time.perf_counter()
    alerts = [_alert_row(*r) for r in alert_rows.itertuples(index=False, name=None)]
    kpis = town_kpis(status, feats, names, abstinent)
    models = {
        o: {"name": c.model_name, "version": str(c.version), "horizon_days": c.horizon_days()}
        for o, c in champions.items()
    }
    rows = RunRows(who, results, previous, masks, cohorts, kinds, champions, matrix)
    clock["rows"] = rows_before = time.perf_counter() - t  # the generator adds its render time
    t = time.perf_counter()
    run_id, replaced = publish_batches(
        engine,
        as_of=day.date(),
        started_at=local_now().replace(microsecond=0),
        n_persons=len(who),
        models=models,
        feature_names=names,
        batches=_batches(rows, alerts, kpis, say, clock),
        seconds=lambda: time.perf_counter() - started,
        progress=say,
    )
    clock["store"] = time.perf_counter() - t - (clock["rows"] - rows_before)
    return RunSummary(
        run_id=run_id,
        as_of=day.date(),
        n_persons=len(who),
        seconds=time.perf_counter() - started,
        models=models,
        replaced=replaced,
        alerts={str(k): int(v) for k, v in alert_rows["kind"].value_counts().items()},
        timings={k: round(v, 2) for k, v in clock.items()},
    )


def _alert_row(
    person_id: str, kind: str, since: Any, days: float, value: float
) -> tuple[str, str, datetime | None, str]:
    when = None if pd.isna(since) else pd.Timestamp(since)
    message = alert_message(kind, when, days, value)
    return (
        person_id,
        kind,
        None if when is None else when.to_pydatetime(),
        orjson.dumps(message).decode(),
    )


def _batches(
    rows: RunRows,
    alerts: list[tuple[Any, ...]],
    kpis: list[tuple[Any, ...]],
    say: Progress,
    clock: dict[str, float],
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """The run's rows as (table, rows) batches, rendered chunk by chunk of persons.

    Time spent rendering (not in the writes) is added to ``clock["rows"]``.
    """
    for lo in range(0, rows.n, CHUNK):
        t = time.perf_counter()
        say(f"explaining and storing {lo:,} of {rows.n:,} persons")
        scores, explanations, vectors = rows.chunk(lo, min(lo + CHUNK, rows.n))
        clock["rows"] += time.perf_counter() - t
        yield "scores", scores
        yield "explanations", explanations
        yield "feature_rows", vectors
    yield "alerts", alerts
    yield "town_kpis", kpis


#: Who the district should be supervising on the day: in their agreement and not
#: lawfully out of it. Not started, ended, exited (completed, custody, death, violation
#: exit) and transferred-out people are outside the 执行率 denominator; a person who
#: lost contact is inside it and counts as not executed.
ORDERED_STATUSES = ("active", "lost_contact")


def _abstinent(
    persons: pd.DataFrame, events: pd.DataFrame, day: pd.Timestamp
) -> dict[tuple[str, str], tuple[int, int]]:
    """People abstinent 3 years per town, on the day and a year before (features.targets)."""
    now = abstinent_3y(persons, events, day)
    before = abstinent_3y(persons, events, day - pd.Timedelta(days=365))
    both = now.merge(before, on=["district", "town"], suffixes=("", "_before"))
    columns = (
        both[c].tolist() for c in ("district", "town", "abstinent_3y", "abstinent_3y_before")
    )
    return {(str(d), str(t)): (int(n), int(b)) for d, t, n, b in zip(*columns, strict=True)}


def town_kpis(
    status: pd.DataFrame,
    feats: pd.DataFrame,
    names: list[str],
    abstinent: Mapping[tuple[str, str], tuple[int, int]] | None = None,
) -> list[tuple[Any, ...]]:
    """KPIs per (district, town), from the cohort statuses of the day:

    * ``execution_rate`` (执行率) = active / ordered, ordered = :data:`ORDERED_STATUSES`;
    * ``lost_contact`` (脱管): people whose latest lost_contact has no later restore;
    * ``employment_rate`` = employed now / active; ``people_per_worker`` = active /
      workers with an active person (target 20, DESIGN §1);
    * ``abstinent_3y`` (and ``abstinent_3y_year_before``, the same count a year
      earlier, the growth target's baseline): ``abstinent`` per town, counted by
      :func:`features.targets.abstinent_3y` (docs/duties.md).
    """
    employed = (
        feats.set_index("person_id")["employed_now"]
        if "employed_now" in names
        else pd.Series(dtype=float)
    )
    s = status.assign(
        active=status["status"] == "active",
        lost=status["status"] == "lost_contact",
        employed=status["person_id"].map(employed).fillna(0).to_numpy() > 0,
    )
    out = []
    for (district, town), g in s.groupby(["district", "town"], sort=True):
        active = g[g["active"]]
        ordered = int(g["status"].isin(ORDERED_STATUSES).sum())
        workers = int(active["worker_id"].nunique())
        body = {
            "district": district,
            "town": town,
            "ordered": ordered,
            "active": len(active),
            "execution_rate": round(len(active) / ordered, 4) if ordered else None,
            "lost_contact": int(g["lost"].sum()),
            "status_counts": {k: int(v) for k, v in g["status"].value_counts().items()},
            "employed": int(active["employed"].sum()),
            "employment_rate": round(float(active["employed"].mean()), 4) if len(active) else None,
            "workers": workers,
            "people_per_worker": round(len(active) / workers, 2) if workers else None,
            "target_people_per_worker": 20,
        }
        if abstinent is not None:
            now, year_before = abstinent.get((str(district), str(town)), (0, 0))
            body["abstinent_3y"], body["abstinent_3y_year_before"] = now, year_before
        out.append((district, town, orjson.dumps(body).decode()))
    return out


__all__ = ["RunSummary", "band_words", "features_at", "score_date"]
