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

import time
from collections.abc import Callable, Mapping
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
from features.store import load_events, load_persons
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
from serving.explain import body_of, explain_rows, model_ref, top_spec
from serving.publish import publish_run

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


def previous_scores(engine: Engine, day: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The latest published run before ``day``: outcome -> frame(person_id, p, band)."""
    with engine.connect() as conn:
        run = conn.execute(
            sa.select(score_runs.c.id)
            .where(score_runs.c.status == "published", score_runs.c.as_of < day.date())
            .order_by(score_runs.c.as_of.desc())
            .limit(1)
        ).scalar()
        if run is None:
            return {}
        frame = pd.read_sql_query(
            sa.text("SELECT outcome, person_id, p, band FROM scores WHERE run_id = :r"),
            conn,
            params={"r": run},
        )
    return {str(o): g.set_index("person_id") for o, g in frame.groupby("outcome")}


def _ranks(frame: pd.DataFrame, by: list[str]) -> np.ndarray:
    order = frame.sort_values(["p", "person_id"], ascending=[False, True], kind="stable")
    return order.groupby(by, sort=False).cumcount().reindex(frame.index).to_numpy() + 1


def score_date(
    engine: Engine,
    as_of: date,
    champions: Mapping[str, ChampionLike],
    *,
    rules: AlertRules | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Score the cohort at ``as_of`` with ``champions`` and publish the run."""
    say = progress or (lambda _msg: None)
    rules = rules or AlertRules()
    started, clock = time.perf_counter(), {}
    t = started
    migrate(engine)
    day = pd.Timestamp(as_of)
    say("loading persons and events")
    persons = load_persons(engine)
    events = load_events(engine, recorded_before=day)
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
    masks = (
        alert_rows.assign(bit=alert_rows["kind"].map(ALERT_BITS))
        .groupby("person_id")["bit"]
        .sum()
        .reindex(who["person_id"], fill_value=0)
        .to_numpy()
    )
    kinds: dict[str, list[str]] = {
        str(k): list(v) for k, v in alert_rows.groupby("person_id")["kind"].agg(list).items()
    }
    clock["alerts"], t = time.perf_counter() - t, time.perf_counter()
    names = [f.name for f in load_catalog().features()]
    matrix = feats[names].to_numpy(dtype=np.float64)
    previous = previous_scores(engine, day)
    results: dict[str, Any] = {}
    for outcome, champion in champions.items():
        say(f"scoring {outcome}")
        X = matrix[:, [names.index(n) for n in champion.feature_names]]
        p = np.asarray(champion.predict(X), dtype=float)
        results[outcome] = (p, bands_of(outcome, p), X)
    clock["predict"], t = time.perf_counter() - t, time.perf_counter()
    rows = _rows(who, results, previous, masks, cohorts, kinds, champions, say)
    clock["explain_rows"], t = time.perf_counter() - t, time.perf_counter()
    vectors = [(pid, matrix[i].tobytes()) for i, pid in enumerate(who["person_id"])]
    alerts = [_alert_row(*r) for r in alert_rows.itertuples(index=False, name=None)]
    kpis = town_kpis(status, feats, names)
    models = {o: {"name": c.model_name, "version": str(c.version)} for o, c in champions.items()}
    clock["rows"], t = time.perf_counter() - t, time.perf_counter()
    run_id, replaced = publish_run(
        engine,
        as_of=day.date(),
        started_at=datetime.now().replace(microsecond=0),
        n_persons=len(who),
        models=models,
        feature_names=names,
        scores=rows["scores"],
        explanations=rows["explanations"],
        vectors=vectors,
        alerts=alerts,
        kpis=kpis,
        progress=say,
        seconds=time.perf_counter() - started,
    )
    clock["store"] = time.perf_counter() - t
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


#: Rows explained and serialised at a time: bounds the memory of Python objects
#: (drivers, dicts) whatever the district's size; only JSON text is kept.
CHUNK = 20_000


def _rows(
    who: pd.DataFrame,
    results: dict[str, Any],
    previous: dict[str, pd.DataFrame],
    masks: np.ndarray,
    cohorts: np.ndarray,
    kinds: dict[str, list[str]],
    champions: Mapping[str, ChampionLike],
    say: Progress,
) -> dict[str, list[tuple[Any, ...]]]:
    base = who[["person_id", "worker_id", "district", "town"]].copy()
    n = len(base)
    sizes = {
        key: base.groupby(cols)["person_id"].transform("size").to_numpy()
        for key, cols in (
            ("caseload", ["worker_id"]),
            ("town", ["district", "town"]),
            ("district", ["district"]),
        )
    }
    cohort_names = {bit: name for name, bit in COHORT_BITS.items()}
    cohort_lists = [[nm for b, nm in cohort_names.items() if c & b] for c in cohorts.tolist()]
    outcomes = list(results)
    shown = {o: [round(x, 6) for x in results[o][0].tolist()] for o in outcomes}
    band_ints = {o: results[o][1].tolist() for o in outcomes}
    words = {b: band_words(b) for b in range(1, 5)}
    ids = base.itertuples(index=False, name=None)
    people = list(ids)
    mask_list = masks.tolist()
    scores: list[tuple[Any, ...]] = []
    explanations: list[tuple[Any, ...]] = []
    for outcome in outcomes:
        champion = champions[outcome]
        X = results[outcome][2]
        p_shown, band_list = shown[outcome], band_ints[outcome]
        frame = base.assign(p=np.asarray(p_shown, dtype=float))
        rank_c = _ranks(frame, ["worker_id"]).tolist()
        rank_t = _ranks(frame, ["district", "town"]).tolist()
        rank_d = _ranks(frame, ["district"]).tolist()
        prev = previous.get(outcome)
        if prev is not None:
            joined = prev.reindex(frame["person_id"])
            prev_p, prev_band = joined["p"].to_numpy(), joined["band"].to_numpy()
        else:
            prev_p = prev_band = np.full(n, np.nan)
        change = [
            None if np.isnan(b) else round(a - b, 6)
            for a, b in zip(p_shown, prev_p.tolist(), strict=True)
        ]
        previous_band = [None if np.isnan(b) else int(b) for b in prev_band.tolist()]
        others = [o for o in outcomes if o != outcome]
        version = str(champion.version)
        model = model_ref(champion)
        for lo in range(0, n, CHUNK):
            say(f"explaining {outcome}: {lo:,} of {n:,}")
            drivers = explain_rows(champion, X[lo : lo + CHUNK])
            for i in range(lo, min(lo + CHUNK, n)):
                pid, worker, district, town = people[i]
                body = body_of(champion, p_shown[i], band_list[i], drivers[i - lo], model)
                item = {
                    "person_id": pid,
                    "worker_id": worker,
                    "district": district,
                    "town": town,
                    "outcome": outcome,
                    "p": p_shown[i],
                    "band": body["band"],
                    "rank_caseload": rank_c[i],
                    "caseload_size": int(sizes["caseload"][i]),
                    "rank_town": rank_t[i],
                    "town_size": int(sizes["town"][i]),
                    "change": change[i],
                    "previous_band": previous_band[i],
                    "top_driver": body["drivers"][0] if body["drivers"] else None,
                    "alerts": kinds.get(pid, []),
                    "cohorts": cohort_lists[i],
                    "other_outcomes": [
                        {"outcome": o, "p": shown[o][i], "band": words[band_ints[o][i]]}
                        for o in others
                    ],
                    "model": model,
                }
                scores.append(
                    (
                        outcome,
                        pid,
                        worker,
                        district,
                        town,
                        p_shown[i],
                        band_list[i],
                        rank_c[i],
                        rank_t[i],
                        rank_d[i],
                        change[i],
                        mask_list[i],
                        cohorts[i].item(),
                        top_spec(body),
                        version,
                        orjson.dumps(item).decode(),
                    )
                )
                explanations.append(
                    (pid, outcome, orjson.dumps({"person_id": pid, **body}).decode())
                )
    return {"scores": scores, "explanations": explanations}


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
