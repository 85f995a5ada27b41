"""``sunflower monitor --date D``: the model monitor over the published runs (issue 16).

Contract: for each outcome, :func:`monitor_day` reads the published run of D
(its scores, and the feature vectors it was scored on) and every earlier
published run, labels the earlier runs whose windows have closed by D with the
one label rule (:func:`models.monitoring.realised.served_labels`, on the
events recorded before D; each closed run's realised figures are stored once,
by the first pass that sees it closed, and only those runs and the two latest
closed ones are labelled), loads the reference profile logged with the model
version that scored D (:func:`models.monitoring.reference.reference_for_version`),
runs one pass (:func:`models.monitoring.job.run_monitor`) and stores it in
``monitor_runs`` / ``monitor_metrics`` (a rerun for the same date and outcome
replaces its rows), logs the headline figures as metrics on the version's
MLflow run (``monitor.*``, the run date as timestamp) and prints the verdict
in Chinese. ``sunflower score`` calls it at the end of every run; a monitor
failure is reported there and never fails the scoring. ``--retrain`` points
``retrain`` at the verdict: the outcomes whose verdict is "retrain recommended"
are retrained on data known at D (the champion gates still decide).

This pass lives in the CLI layer because it joins both sides: serving owns the
tables, and serving may not import the models layer's evaluation code
(``.importlinter``, "no-training") that the realised figures reuse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
import typer
from rich.console import Console
from sqlalchemy.engine import Engine

console = Console()
err = Console(stderr=True)
Say = Callable[[str], None]


def _published(engine: Engine, until: date) -> pd.DataFrame:
    from serving.db import score_runs

    q = sa.select(
        score_runs.c.id, score_runs.c.as_of, score_runs.c.models, score_runs.c.feature_names
    ).where(score_runs.c.status == "published", score_runs.c.as_of <= until)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=["id", "as_of", "models", "feature_names"])


def _scores(engine: Engine, run_ids: list[int], outcome: str) -> pd.DataFrame:
    from serving.db import score_runs, scores

    cols = [
        scores.c[c]
        for c in (
            "person_id",
            "worker_id",
            "district",
            "town",
            "p",
            "band",
            "rank_caseload",
            "rank_district",
            "model_version",
        )
    ]
    q = (
        sa.select(score_runs.c.as_of, *cols)
        .join(score_runs, score_runs.c.id == scores.c.run_id)
        .where(scores.c.run_id.in_(run_ids), scores.c.outcome == outcome)
    )
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).mappings().all())
    if frame.empty:
        return frame
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    return frame


def _features(engine: Engine, run_id: int, names: list[str]) -> pd.DataFrame:
    from serving.db import feature_rows

    q = sa.select(feature_rows.c.person_id, feature_rows.c.vector).where(
        feature_rows.c.run_id == run_id
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    matrix = np.vstack([np.frombuffer(v, dtype=np.float64) for _, v in rows]) if rows else None
    frame = pd.DataFrame(matrix, columns=names) if matrix is not None else pd.DataFrame()
    frame.insert(0, "person_id", [pid for pid, _ in rows])
    return frame


def _store(engine: Engine, result: Any, realised: pd.DataFrame) -> int:
    """Replace the date's rows for the outcome with this pass (one transaction)."""
    from features.contract import local_now
    from serving.db import monitor_metrics, monitor_runs

    metrics: list[dict[str, Any]] = []

    def add(frame: pd.DataFrame, kind: str, values: list[str], when: Any = None) -> None:
        for r in frame.to_dict("records"):
            for m in values:
                v = r.get(m)
                if v is None or isinstance(v, str):
                    continue
                metrics.append(
                    {
                        "run_as_of": pd.Timestamp(r.get("as_of", when)).date(),
                        "kind": kind,
                        "scope": str(r["scope"]),
                        "key": str(r["key"])[:100],
                        "metric": (f"{r['item']}.{m}" if "item" in r else m)[:100],
                        "value": None if v != v else float(v),
                    }
                )

    add(result.drift, "drift", ["psi", "js", "missing_change"], result.as_of)
    add(
        result.expected,
        "expected",
        [c for c in result.expected.columns if c not in ("as_of", "scope", "key")],
    )
    add(realised, "realised", [c for c in realised.columns if c not in ("as_of", "scope", "key")])
    day = pd.Timestamp(result.as_of).date()
    with engine.begin() as conn:
        old = [
            r[0]
            for r in conn.execute(
                sa.select(monitor_runs.c.id).where(
                    monitor_runs.c.as_of == day, monitor_runs.c.outcome == result.outcome
                )
            )
        ]
        if old:
            conn.execute(monitor_metrics.delete().where(monitor_metrics.c.monitor_id.in_(old)))
            conn.execute(monitor_runs.delete().where(monitor_runs.c.id.in_(old)))
        inserted = conn.execute(
            monitor_runs.insert().values(
                as_of=day,
                outcome=result.outcome,
                model_version=result.model_version,
                level=result.verdict.level,
                created_at=local_now().replace(microsecond=0),
                headline=json.dumps(
                    {k: None if v != v else v for k, v in result.headline().items()}
                ),
                sentences=json.dumps(result.sentences, ensure_ascii=False),
                evidence=result.verdict.table().to_json(
                    orient="records", force_ascii=False, date_format="iso"
                ),
            )
        ).inserted_primary_key
        assert inserted is not None
        new_id = inserted[0]
        if metrics:
            conn.execute(monitor_metrics.insert(), [m | {"monitor_id": new_id} for m in metrics])
    return int(new_id)


def _to_label(
    engine: Engine, outcome: str, day: date, shut: dict[date, int], recent: int
) -> list[int]:
    """The closed runs this pass labels: those whose realised figures no earlier pass
    stored (each closed run is stored once), and the ``recent`` latest, which the
    verdict reads. A year of daily runs is then labelled once, not every day."""
    stored = _stored_realised(engine, outcome, day)
    latest = sorted(shut)[-recent:] if recent > 0 else []
    return [shut[d] for d in sorted(shut) if d not in stored or d in latest]


def _stored_realised(engine: Engine, outcome: str, day: date) -> set[date]:
    """Run dates whose realised figures an earlier pass (not ``day``'s) has stored."""
    from serving.db import monitor_metrics, monitor_runs

    q = (
        sa.select(monitor_metrics.c.run_as_of)
        .join(monitor_runs, monitor_runs.c.id == monitor_metrics.c.monitor_id)
        .where(
            monitor_runs.c.outcome == outcome,
            monitor_runs.c.as_of != day,
            monitor_metrics.c.kind == "realised",
        )
        .distinct()
    )
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(q)}


def monitor_day(engine: Engine, day: date, say: Say | None = None) -> list[Any]:
    """One monitoring pass per outcome for the published run of ``day``; stored and logged."""
    from features.config import OUTCOMES, load_label_config
    from features.store import load_events, load_persons
    from models import registry
    from models.config import load_config
    from models.monitoring.job import log_headline, run_monitor
    from models.monitoring.realised import audit_attributes, closed, served_labels
    from models.monitoring.reference import reference_for_version
    from models.monitoring.verdict import Thresholds
    from serving.bands import THRESHOLDS

    tell = say or (lambda _m: None)
    runs = _published(engine, day)
    today = runs[pd.to_datetime(runs["as_of"]).dt.date == day]
    if today.empty:
        raise LookupError(f"no published run on {day}: run `sunflower score --date {day}` first")
    run = today.iloc[0]
    names = json.loads(run["feature_names"])
    features = _features(engine, int(run["id"]), names)
    horizon = load_label_config().horizon_days
    observed = pd.Timestamp(day)
    earlier = runs[pd.to_datetime(runs["as_of"]) < observed]
    shut = {
        pd.Timestamp(d).date(): int(i)
        for i, d in zip(earlier["id"].tolist(), earlier["as_of"].tolist(), strict=True)
        if closed(pd.Timestamp(d), observed, horizon)
    }
    persons = load_persons(engine)
    events = None
    client = registry.connect()
    ages = load_config().fairness.age_bands
    results = []
    for outcome in OUTCOMES:
        scored = _scores(engine, [int(run["id"])], outcome)
        if scored.empty:
            continue
        version = str(scored["model_version"].iloc[0])
        try:
            reference = reference_for_version(client, outcome, version)
        except LookupError as exc:
            tell(f"{outcome}: {exc}")
            continue
        frame = scored.merge(features, on="person_id", how="left", validate="one_to_one")
        needed = _to_label(engine, outcome, day, shut, Thresholds().consecutive)
        history = _scores(engine, needed, outcome) if needed else pd.DataFrame()
        labels = np.zeros(0)
        if len(history):
            if events is None:
                events = load_events(engine, recorded_before=observed)
            history = audit_attributes(history, persons, ages)
            labels = served_labels(
                history, persons=persons, events=events, outcome=outcome, observed_until=observed
            )
        result = run_monitor(
            reference,
            frame,
            frame["p"].to_numpy(dtype=float),
            history,
            labels,
            outcome=outcome,
            as_of=observed,
            observed_until=observed,
            horizon_days=horizon,
            band_thresholds=THRESHOLDS[outcome],
            model_version=version,
        )
        known = _stored_realised(engine, outcome, day)
        fresh = result.realised
        if len(fresh):
            fresh = fresh[[pd.Timestamp(d).date() not in known for d in fresh["as_of"]]]
        _store(engine, result, fresh)
        mv = client.get_model_version(registry.model_name(outcome), version)
        log_headline(client, str(mv.run_id), result)
        results.append(result)
        tell(f"{outcome}: {result.verdict.words}")
    return results


def _engine() -> Engine:
    from features.store import make_engine
    from serving.db import migrate
    from serving.settings import get_settings

    engine = make_engine(get_settings().db_url)
    migrate(engine)
    return engine


def show(results: list[Any]) -> None:
    """The verdicts in Chinese, one block per outcome."""
    for r in results:
        console.print(
            f"[bold]{r.outcome}[/bold] ({r.as_of.date()}, version {r.model_version}): "
            f"{r.verdict.words}"
        )
        for sentence in r.sentences:
            console.print(f"  {sentence}")


def monitor(
    day: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD; default today.")] = None,
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain",
            help="Then retrain (as `sunflower retrain --as-of DATE`) every outcome whose "
            "verdict is 'retrain recommended'; the champion still moves only if the gates pass.",
        ),
    ] = False,
) -> None:
    """Monitor the champions on DATE's published run: drift, realised and expected quality."""
    as_of = datetime.strptime(day, "%Y-%m-%d").date() if day else date.today()
    try:
        with err.status("monitoring…") as status:
            results = monitor_day(_engine(), as_of, lambda m: status.update(m))
    except LookupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    show(results)
    due = tuple(r.outcome for r in results if r.verdict.level == "retrain")
    if retrain and due:
        from sunflower.cli_models import _run

        console.print(f"retraining on the verdict: {', '.join(due)}")
        _run(due, None, None, None, datetime.combine(as_of, datetime.min.time()))
    elif retrain:
        console.print("no outcome is recommended for retraining: nothing to do")


def register(app: typer.Typer) -> None:
    """Add ``monitor`` to the ``sunflower`` app."""
    app.command()(monitor)
