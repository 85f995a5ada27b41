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

from features.catalog import load_catalog
from features.config import load_label_config
from features.engine import attach, compute, connect, set_entities
from features.store import load_event_columns, load_persons
from models.explain import Top
from serving.alerts import (
    ALERT_BITS,
    COHORT_BITS,
    AlertRules,
    alert_message,
    cohort_flags,
    compute_alerts,
)
from serving.bands import band_words, bands_of
from serving.champions import ChampionLike
from serving.db import migrate, score_runs
from serving.explain import (
    TOP_K,
    BodyWriter,
    body_of,
    explain_batch,
    json_numbers,
    json_text,
    model_ref,
    round_like_python,
    top_spec,
)
from serving.publish import publish_batches

Progress = Callable[[str], None]


@dataclass
class RunSummary:
    """What a scoring run did."""

    run_id: int
    as_of: date
    n_persons: int
    seconds: float
    models: dict[str, dict[str, str]]
    replaced: list[int]
    alerts: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)


def features_at(
    persons: pd.DataFrame, events: pd.DataFrame, day: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features of the cohort at ``day``, status of everyone whose agreement spans it)."""
    span = persons[(persons["program_start"] <= day) & (persons["program_end"] >= day)]
    entities = pd.DataFrame({"person_id": span["person_id"].to_numpy(), "as_of": day})
    con = connect()
    attach(con, persons, events)
    set_entities(con, entities)
    frame = compute(con, load_catalog(), load_label_config())
    con.close()
    status = span[["person_id", "worker_id", "district", "town"]].reset_index(drop=True)
    status["status"] = frame["_status"].to_numpy()
    active = frame[frame["_in_cohort"].to_numpy(dtype=bool)].reset_index(drop=True)
    return active, status


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


def _ranks(p: np.ndarray, groups: np.ndarray, tie: np.ndarray) -> list[int]:
    """1-based rank within each group by p descending, ties by ``tie`` (person_id order)."""
    order = np.lexsort((tie, -p, groups))
    g = groups[order]
    first = np.ones(len(g), bool)
    first[1:] = g[1:] != g[:-1]
    starts = np.flatnonzero(first)
    run = np.repeat(starts, np.diff(np.append(starts, len(g))))
    ranks = np.empty(len(g), np.int64)
    ranks[order] = np.arange(len(g)) - run + 1
    return ranks.tolist()


def _group_codes(*columns: pd.Series) -> np.ndarray:
    key = columns[0] if len(columns) == 1 else pd.MultiIndex.from_arrays(columns)
    return np.asarray(pd.factorize(key, use_na_sentinel=False)[0], dtype=np.int64)


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
    rules: AlertRules | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Score the cohort at ``as_of`` with ``champions`` and publish the run."""
    with _no_gc():
        return _score_date(engine, as_of, champions, rules or AlertRules(), progress)


def _score_date(
    engine: Engine,
    as_of: date,
    champions: Mapping[str, ChampionLike],
    rules: AlertRules,
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
    say("building features")
    feats, status = features_at(persons, events, day)
    who = feats[["person_id"]].merge(
        persons[["person_id", "worker_id", "district", "town", "program_start", "program_end"]],
        on="person_id",
        how="left",
    )
    clock["features"], t = time.perf_counter() - t, time.perf_counter()
    say("alerts")
    alert_rows = compute_alerts(who, events, day, rules)
    cohorts = cohort_flags(who, events, day, rules).to_numpy()
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
        batch = explain_batch(champion, X, TOP_K)
        if batch is None:  # a champion without the batch path: explained chunk by chunk below
            results[outcome] = (np.asarray(champion.predict(X), dtype=float), None, X)
        else:
            results[outcome] = (batch[0], batch[1], None)
    clock["predict_explain"], t = time.perf_counter() - t, time.perf_counter()
    alerts = [_alert_row(*r) for r in alert_rows.itertuples(index=False, name=None)]
    kpis = town_kpis(status, feats, names)
    models = {o: {"name": c.model_name, "version": str(c.version)} for o, c in champions.items()}
    clock["rows"] = rows_before = time.perf_counter() - t  # the generator adds its render time
    t = time.perf_counter()
    run_id, replaced = publish_batches(
        engine,
        as_of=day.date(),
        started_at=datetime.now().replace(microsecond=0),
        n_persons=len(who),
        models=models,
        feature_names=names,
        batches=_batches(
            who,
            results,
            previous,
            masks,
            cohorts,
            kinds,
            champions,
            matrix,
            alerts,
            kpis,
            say,
            clock,
        ),
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


#: Persons rendered and written at a time: bounds the JSON text and, for a champion
#: without the batch path, its Python driver objects.
CHUNK = 20_000


def _batches(
    who: pd.DataFrame,
    results: dict[str, Any],
    previous: dict[str, dict[str, tuple[float, int]]],
    masks: np.ndarray,
    cohorts: np.ndarray,
    kinds: dict[str, list[str]],
    champions: Mapping[str, ChampionLike],
    matrix: np.ndarray,
    alerts: list[tuple[Any, ...]],
    kpis: list[tuple[Any, ...]],
    say: Progress,
    clock: dict[str, float],
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """The run's rows as (table, rows) batches, rendered chunk by chunk of persons.

    Time spent here (not in the writes) is added to ``clock["rows"]``.
    """
    t = time.perf_counter()
    n = len(who)
    pids = who["person_id"].astype(str).tolist()
    people = list(
        zip(
            pids,
            who["worker_id"].tolist(),
            who["district"].tolist(),
            who["town"].tolist(),
            strict=True,
        )
    )
    caseload = _group_codes(who["worker_id"])
    town = _group_codes(who["district"], who["town"])
    district = _group_codes(who["district"])
    caseload_size = np.bincount(caseload)[caseload].tolist()
    town_size = np.bincount(town)[town].tolist()
    # person_id order (code points, as Python compares strings) breaks ties in ranks
    tie = np.empty(n, np.int64)
    tie[np.argsort(np.array(pids, dtype=str), kind="stable")] = np.arange(n)
    cohort_names = {bit: name for name, bit in COHORT_BITS.items()}
    cohort_lists = [[nm for b, nm in cohort_names.items() if c & b] for c in cohorts.tolist()]
    cohort_ints = cohorts.tolist()
    mask_list = masks.tolist()
    outcomes = list(results)
    shown = {o: [round(x, 6) for x in results[o][0].tolist()] for o in outcomes}
    band_ints = {o: bands_of(o, results[o][0]).tolist() for o in outcomes}
    words = {b: band_words(b) for b in range(1, 5)}
    state = {}
    for outcome in outcomes:
        champion = champions[outcome]
        p_array = np.asarray(shown[outcome], dtype=float)
        state[outcome] = (
            champion,
            _ranks(p_array, caseload, tie),
            _ranks(p_array, town, tie),
            _ranks(p_array, district, tie),
            None,
            [o for o in outcomes if o != outcome],
            str(champion.version),
            model_ref(champion),
            BodyWriter(champion) if results[outcome][1] is not None else None,
        )
    clock["rows"] += time.perf_counter() - t
    text: dict[object, str] = {}  # JSON of repeated values (workers, towns, alert lists)

    def cached(value: Any, key: object = None) -> str:
        k = value if key is None else key
        found = text.get(k)
        if found is None:
            found = text[k] = json_text(value)
        return found

    bands_json = {b: json_text(w) for b, w in words.items()}
    p_arrays = {o: np.asarray(shown[o], dtype=np.float64) for o in outcomes}
    # the previous run's p (NaN: not scored then) and band (-1) per person
    old_p, old_band = {}, {}
    for outcome in outcomes:
        before = previous.get(outcome, {})
        found = [before.get(pid) for pid in pids]
        old_p[outcome] = np.array([np.nan if f is None else f[0] for f in found], np.float64)
        old_band[outcome] = [-1 if f is None else int(f[1]) for f in found]
    for lo in range(0, n, CHUNK):
        t = time.perf_counter()
        hi = min(lo + CHUNK, n)
        say(f"explaining and storing {lo:,} of {n:,} persons")
        j_pids = [json_text(pid) for pid in pids[lo:hi]]
        heads = [
            f'{{"person_id":{j_pid},"worker_id":{cached(worker)},'
            f'"district":{cached(dist)},"town":{cached(twn)},"outcome":'
            for j_pid, (_, worker, dist, twn) in zip(j_pids, people[lo:hi], strict=True)
        ]
        flags = [  # alerts and cohorts, the same for both outcomes
            f'"alerts":{cached(kinds.get(pid, []), ("alerts", *kinds.get(pid, ())))},'
            f'"cohorts":{cached(cohort_lists[i], ("cohorts", cohort_ints[i]))},'
            for i, pid in zip(range(lo, hi), pids[lo:hi], strict=True)
        ]
        p_text = {o: json_numbers(p_arrays[o][lo:hi]) for o in outcomes}
        band_text = {o: [bands_json[b] for b in band_ints[o][lo:hi]] for o in outcomes}
        scores: list[tuple[Any, ...]] = []
        explanations: list[tuple[Any, ...]] = []
        for outcome in outcomes:
            champion, rank_c, rank_t, rank_d, _, others, version, model, writer = state[outcome]
            _, top, X = results[outcome]
            p_shown, band_list = shown[outcome], band_ints[outcome]
            rendered: list[tuple[str, str, str | None]]
            if writer is not None:
                rendered = writer.render(
                    p_shown[lo:hi],
                    band_list[lo:hi],
                    Top(
                        top.units[lo:hi],
                        top.contributions[lo:hi],
                        top.key_unit[lo:hi],
                        top.key_value[lo:hi],
                    ),
                )
            else:
                drivers = champion.explain(X[lo:hi], top_k=TOP_K)
                rendered = [
                    _rendered(body_of(champion, p_shown[i], band_list[i], drivers[i - lo], model))
                    for i in range(lo, hi)
                ]
            change = round_like_python(p_arrays[outcome][lo:hi] - old_p[outcome][lo:hi], 6)
            change_text = json_numbers(change)  # null where there was no previous score
            changes = [None if c != c else c for c in change.tolist()]
            previous_band = ["null" if b < 0 else str(b) for b in old_band[outcome][lo:hi]]
            j_outcome, j_model = json_text(outcome), json_text(model)
            other = [
                ",".join(
                    f'{{"outcome":{cached(o)},"p":{p_text[o][i]},"band":{band_text[o][i]}}}'
                    for o in others
                )
                for i in range(hi - lo)
            ]
            items = [
                f'{head}{j_outcome},"p":{pt},"band":{bt},"rank_caseload":{rc},'
                f'"caseload_size":{cs},"rank_town":{rt},"town_size":{ts},"change":{ct},'
                f'"previous_band":{pb},"top_driver":{r[1]},{fl}'
                f'"other_outcomes":[{ot}],"model":{j_model}}}'
                for head, pt, bt, rc, cs, rt, ts, ct, pb, r, fl, ot in zip(
                    heads,
                    p_text[outcome],
                    band_text[outcome],
                    rank_c[lo:hi],
                    caseload_size[lo:hi],
                    rank_t[lo:hi],
                    town_size[lo:hi],
                    change_text,
                    previous_band,
                    rendered,
                    flags,
                    other,
                    strict=True,
                )
            ]
            scores += [
                (outcome, *who_i, p, b, rc, rt, rd, ch, m, co, r[2], version, item)
                for who_i, p, b, rc, rt, rd, ch, m, co, r, item in zip(
                    people[lo:hi],
                    p_shown[lo:hi],
                    band_list[lo:hi],
                    rank_c[lo:hi],
                    rank_t[lo:hi],
                    rank_d[lo:hi],
                    changes,
                    mask_list[lo:hi],
                    cohort_ints[lo:hi],
                    rendered,
                    items,
                    strict=True,
                )
            ]
            explanations += [
                (pid, outcome, f'{{"person_id":{jp},{r[0]}')
                for pid, jp, r in zip(pids[lo:hi], j_pids, rendered, strict=True)
            ]
        vectors = [(pids[i], matrix[i].tobytes()) for i in range(lo, hi)]
        clock["rows"] += time.perf_counter() - t
        yield "scores", scores
        yield "explanations", explanations
        yield "feature_rows", vectors
    yield "alerts", alerts
    yield "town_kpis", kpis


def _rendered(body: dict[str, Any]) -> tuple[str, str, str | None]:
    """(body JSON without its opening brace, first driver's JSON, top spec) of a body dict."""
    first = json_text(body["drivers"][0]) if body["drivers"] else "null"
    return json_text(body)[1:], first, top_spec(body)


def town_kpis(status: pd.DataFrame, feats: pd.DataFrame, names: list[str]) -> list[tuple]:
    """KPIs per (district, town): execution rate, lost contact, employment, worker ratio."""
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
        workers = int(active["worker_id"].nunique())
        body = {
            "district": district,
            "town": town,
            "ordered": len(g),
            "active": len(active),
            "execution_rate": round(len(active) / len(g), 4) if len(g) else None,
            "lost_contact": int(g["lost"].sum()),
            "status_counts": {k: int(v) for k, v in g["status"].value_counts().items()},
            "employed": int(active["employed"].sum()),
            "employment_rate": round(float(active["employed"].mean()), 4) if len(active) else None,
            "workers": workers,
            "people_per_worker": round(len(active) / workers, 2) if workers else None,
            "target_people_per_worker": 20,
        }
        out.append((district, town, orjson.dumps(body).decode()))
    return out


__all__ = ["RunSummary", "band_words", "features_at", "score_date"]
