"""Serving speed: daily scoring stored, risk list / explanation over HTTP, ad-hoc vs MLflow.

Prints figures, asserts nothing. Sizes and durations come from the environment:
``BENCH_PERSONS`` (default 100000; 1000000 for the country-scale figure),
``BENCH_SECONDS`` (closed-loop seconds per endpoint, default 15),
``BENCH_SUSTAIN`` (open-loop seconds at 500 req/s, default 60),
``BENCH_MLFLOW`` (0 skips the ``mlflow models serve`` comparison),
``BENCH_PARTS`` (which of ``score,http,adhoc,mlflow,publish`` to run; default
all but ``publish``: audited list requests while the job publishes,
:mod:`benchmarks.publish_wait`),
``BENCH_DATABASE_URL`` (the service database; default a SQLite file in
``BENCH_DIR``; a PostgreSQL URL times the same job on PostgreSQL — the district
is ingested there on first use, progress kept in ``BENCH_DIR``).

1. Daily scoring: a synthetic district (about 24 events per person over the last
   year) is ingested into a fresh SQLite file; two LightGBM champions (the
   models layer's default shape) are trained on it and registered in a
   temporary MLflow store; ``score_date`` is timed end to end (load, features,
   alerts, predict + TreeSHAP + sentences for both outcomes, one-transaction
   store), with a breakdown per phase.
2. HTTP (``http``): ``sunflower serve`` (one process, 127.0.0.1) and a load
   generator in a separate process (``benchmarks/loadgen.py``): closed loop for
   throughput, then open loop at 500 req/s for the latency percentiles and
   error count. Every closed-loop figure also gives the server's CPU time per
   request (independent of how busy the shared machine is).
3. Ad-hoc scoring (``adhoc``): one supplied feature row (``POST
   /score/features``, the target's form; one outcome, then both), and a person
   with a year of events in the input contract (``POST /score/history``,
   features built per request; no target). The row is the history's own
   feature row.
4. ``mlflow``: the same row against ``mlflow models serve --env-manager local
   --workers 1`` on the same registered model (probability only; ours with
   explanation), same client, side by side, and the ratio.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2025, 6, 1)


#: Persons generated and ingested at a time by the set-up (bounds its memory).
SETUP_CHUNK = 100_000
EVENT_TYPES = [
    "check_in",
    "urine_test",
    "home_visit",
    "counselling",
    "family_contact",
    "employment_start",
    "controlled_medicine_purchase",
]
EVENT_SHARES = [0.35, 0.3, 0.15, 0.08, 0.07, 0.03, 0.02]
EVENTS_PER_PERSON = 24


def make_district(n: int, seed: int = 11, first: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Persons ``first .. first + n - 1`` (20 per worker, 50 workers per town) and ~24
    events each over the year before AS_OF, as contract rows.

    Drawn in numpy from a generator seeded by (seed, first), so a district is made
    chunk by chunk with bounded memory (the same chunk is the same whatever the total).
    """
    rng = np.random.default_rng([seed, first])
    index = first + np.arange(n)
    ids = np.char.add("p-", np.char.zfill(index.astype(str), 7))
    start = np.datetime64("2023-07-01") + rng.integers(0, 690, n).astype("timedelta64[D]")
    workers = index // 20
    persons = pd.DataFrame(
        {
            "person_id": ids,
            "sex": rng.choice(["M", "F"], n, p=[0.8, 0.2]),
            "birth_year": rng.integers(1965, 2004, n).astype(str),
            "district": "示例区",
            "town": np.char.add("镇", (workers // 50).astype(str)),
            "worker_id": np.char.add("w-", workers.astype(str)),
            "program": "community_rehab",
            "program_start": np.datetime_as_string(start),
            "program_end": np.datetime_as_string(start + np.timedelta64(1094, "D")),
            "primary_drug": rng.choice(["heroin", "methamphetamine", "ketamine"], n),
            "first_use_year": "",
            "prior_compulsory_detox": rng.integers(0, 4, n).astype(str),
            "household": rng.choice(["local", "non_local"], n),
            "living": "with_family",
            "marital": "",
            "education": "",
        }
    )
    k = EVENTS_PER_PERSON
    who = np.repeat(np.arange(n), k)
    day = np.datetime64(AS_OF) - rng.integers(1, 365, n * k).astype("timedelta64[D]")
    keep = day >= start[who]
    who, day = who[keep], day[keep]
    m = len(who)
    kind = rng.choice(np.array(EVENT_TYPES), m, p=EVENT_SHARES)
    result = np.where(
        kind == "check_in",
        rng.choice(["attended", "missed"], m, p=[0.9, 0.1]),
        np.where(
            kind == "urine_test",
            rng.choice(["negative", "positive", "refused"], m, p=[0.93, 0.05, 0.02]),
            "",
        ),
    )
    # event ids unique across chunks: the person's index and the event's slot
    slot = np.flatnonzero(keep) % k
    events = pd.DataFrame(
        {
            "event_id": np.char.add(
                np.char.add("e-", index[who].astype(str)), np.char.add("-", slot.astype(str))
            ),
            "person_id": ids[who],
            "ts": np.char.add(np.datetime_as_string(day), "T09:00:00"),
            "recorded_at": "",
            "type": kind,
            "result": result,
            "value": np.where(kind == "controlled_medicine_purchase", "2", ""),
            "source": "worker",
        }
    )
    return persons, events


def train_and_register(engine: Any, tracking_uri: str) -> dict:
    """Two champions of the models layer's default shape, registered under @champion."""
    import lightgbm as lgb
    import mlflow
    from mlflow import MlflowClient

    from features.store import load_event_columns, load_persons
    from models.calibration import PlattCalibrator
    from models.champion import load_champion
    from models.config import load_config
    from models.predictor import CalibratedBooster
    from models.pyfunc import log_pyfunc
    from models.registry import model_name
    from serving.daily.job import features_at

    day = pd.Timestamp(AS_OF) - pd.Timedelta(days=90)
    feats = features_at(load_persons(engine), load_event_columns(engine, day), day).features
    feats = feats.sample(n=min(len(feats), 50_000), random_state=1)
    from features.catalog import load_catalog

    names = [f.name for f in load_catalog().features()]
    X = feats[names].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(3)
    cfg = load_config()
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    artifacts = Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts"
    experiment = client.create_experiment("bench-serving", artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    for outcome, col in (
        ("relapse", "tests_positive_365d"),
        ("loss_of_contact", "checkins_missed_90d"),
    ):
        logit = -2.5 + 0.8 * X[:, names.index(col)] - 0.5 * X[:, names.index("employed_now")]
        y = rng.random(len(X)) < 1 / (1 + np.exp(-logit))
        params = {**cfg.lightgbm.params, "verbose": -1, "num_threads": 2}
        booster = lgb.train(params, lgb.Dataset(X, y.astype(int)), num_boost_round=300)
        cal = PlattCalibrator().fit(np.asarray(booster.predict(X, raw_score=True)), y.astype(int))
        predictor = CalibratedBooster(booster, cal.a_, cal.b_, names)
        name = model_name(outcome)
        with mlflow.start_run():
            info = log_pyfunc(predictor, registered_model_name=name)
        version = info.registered_model_version
        client.set_registered_model_alias(name, "champion", str(version))
    return {o: load_champion(o, tracking_uri) for o in ("relapse", "loss_of_contact")}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    """``sunflower serve`` on 127.0.0.1:``port`` in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "sunflower.cli", "serve", "--port", str(port)]
        + ["--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )


def wait_up(url: str, seconds: float = 120) -> None:
    """Until ``url`` answers below 500 (raises after ``seconds``)."""
    import httpx

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


def _load(
    url: str,
    token: str,
    seconds: float,
    rate: float | None = None,
    body: str | None = None,
    conns: int = 16,
    server_pid: int | None = None,
) -> dict:
    args = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        url,
        token,
        "--seconds",
        str(seconds),
        "--conns",
        str(conns),
    ]
    if rate:
        args += ["--rate", str(rate)]
    if body:
        args += ["--body", body]
    if server_pid:
        args += ["--server-pid", str(server_pid)]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _setup(tmp: Path, n: int) -> tuple[object, dict]:
    """The district database and the two registered champions, kept in ``tmp``.

    Made chunk by chunk (``SETUP_CHUNK`` persons generated and ingested at a time,
    so 1,000,000 persons fit in a few GB); the champions are trained on the first
    chunk. Progress is recorded in ``tmp``: an interrupted set-up resumes, and a
    finished one (``ready``) is reused.
    """
    from features.ingest import ingest_frames
    from features.store import make_engine
    from models.champion import load_champion
    from serving.db import migrate

    db, tracking = _database_url(tmp), f"sqlite:///{tmp / 'mlflow.db'}"
    engine = make_engine(db)
    if (tmp / "ready").exists():
        champions = {o: load_champion(o, tracking) for o in ("relapse", "loss_of_contact")}
        print(f"setup: reusing {tmp} ({(tmp / 'ready').read_text().strip()})")
        return engine, champions
    done_file, trained_file = tmp / "ingested", tmp / "trained"
    done = int(done_file.read_text()) if done_file.exists() else 0
    t, events_total = time.perf_counter(), 0
    for first in range(done, n, SETUP_CHUNK):
        persons, events = make_district(min(SETUP_CHUNK, n - first), first=first)
        ingest_frames(engine, persons, events)
        events_total += len(events)
        done_file.write_text(f"{first + len(persons)}\n")
        print(
            f"setup: {first + len(persons):,} of {n:,} persons ingested "
            f"({events_total:,} events; {time.perf_counter() - t:.0f} s so far), {_load_average()}",
            flush=True,
        )
        if not trained_file.exists():
            t2 = time.perf_counter()
            train_and_register(engine, tracking)
            trained_file.write_text("1\n")
            print(
                f"setup: two champions trained and registered in {time.perf_counter() - t2:.0f} s"
            )
    migrate(engine)  # the service tables too: accounts can be added before any scoring
    champions = {o: load_champion(o, tracking) for o in ("relapse", "loss_of_contact")}
    (tmp / "ready").write_text(f"{n} persons\n")
    return engine, champions


def _database_url(tmp: Path) -> str:
    return os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'sunflower.db'}"


def _load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def main() -> None:
    from serving.auth import add_user, issue_token
    from serving.daily.job import score_date

    n = int(os.environ.get("BENCH_PERSONS", "100000"))
    seconds = float(os.environ.get("BENCH_SECONDS", "15"))
    sustain = float(os.environ.get("BENCH_SUSTAIN", "60"))
    parts = set(os.environ.get("BENCH_PARTS", "score,http,adhoc,mlflow").split(","))
    if os.environ.get("BENCH_MLFLOW", "1") == "0":
        parts.discard("mlflow")
    keep = os.environ.get("BENCH_DIR")
    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="sunflower-bench-serving-"))
    tmp.mkdir(parents=True, exist_ok=True)
    db = _database_url(tmp)
    tracking = f"sqlite:///{tmp / 'mlflow.db'}"
    engine, champions = _setup(tmp, n)
    needs_run = parts & {"http", "mlflow", "publish"} and not (tmp / "scored").exists()
    if "score" in parts or needs_run:
        print(f"scoring starts, {_load_average()}", flush=True)
        before = resource.getrusage(resource.RUSAGE_SELF)
        summary = score_date(engine, AS_OF, champions)  # type: ignore[arg-type]
        after = resource.getrusage(resource.RUSAGE_SELF)
        print(
            f"daily scoring, {summary.n_persons:,} persons x 2 outcomes, stored: "
            f"{summary.seconds:.1f} s (target < 45 s per 100k, < 480 s per 1M)  "
            f"phases: {summary.timings}  CPU user {after.ru_utime - before.ru_utime:.1f} s, "
            f"sys {after.ru_stime - before.ru_stime:.1f} s; peak RSS of the process "
            f"{after.ru_maxrss / 2**20:.2f} GB; scoring ends, {_load_average()}"
        )
        (tmp / "scored").write_text("1\n")
    tokens = {}
    for name, role, scope in (
        ("bench-worker", "worker", {"worker_id": "w-0"}),
        ("bench-integrator", "integrator", {}),
    ):
        try:
            add_user(engine, name, role, **scope)  # type: ignore[arg-type]
        except ValueError:
            pass  # a reused directory has the accounts
        tokens[name] = issue_token(engine, name)  # type: ignore[arg-type]
    worker, integrator = tokens["bench-worker"], tokens["bench-integrator"]
    env = {
        **os.environ,
        "SUNFLOWER_DATABASE_URL": db,
        "MLFLOW_TRACKING_URI": tracking,
        "SUNFLOWER_HOME": str(tmp),
        # `mlflow models serve` starts uvicorn by name: the venv's bin must be on PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if parts & {"http", "adhoc", "mlflow"}:
        history = _history_body()
        row = _feature_row(history, champions["relapse"].feature_names)
        ours = _bench_http(env, worker, integrator, row, history, seconds, sustain, parts)
        if "mlflow" in parts:
            _bench_mlflow(env, row, seconds, ours)
    if "publish" in parts:
        from benchmarks.publish_wait import bench_publish_wait

        bench_publish_wait(env, worker, AS_OF, _port())


def _history_body() -> dict:
    """One synthetic person and their year of events in the input contract, as of AS_OF."""
    persons, events = make_district(1, seed=5)
    person = {k: v for k, v in persons.iloc[0].to_dict().items() if v != ""}
    rows = [{k: v for k, v in e.items() if v != ""} for e in events.to_dict("records")]
    return {"person": person, "events": rows, "as_of": AS_OF.isoformat()}


def _feature_row(history: dict, names: list[str]) -> dict[str, float]:
    """The history's point-in-time feature row (what the history form scores), by name."""
    from serving.api.adhoc import features_from_history

    frame = features_from_history(history["person"], history["events"], AS_OF)
    return {n: float(frame[n].iloc[0]) for n in names}


def _post(url: str, token: str, body: str) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    r = httpx.post(url, content=body, headers=headers, timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"{url}: {r.status_code} {r.text[:500]}")
    return r.json()


def _figures(r: dict) -> str:
    return (
        f"{r['rps']:.0f} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
        f"errors {r['errors']}, server CPU {r['server_cpu_us']:.0f} µs/request"
    )


def _bench_http(
    env: dict[str, str],
    worker: str,
    integrator: str,
    row: dict[str, float],
    history: dict,
    seconds: float,
    sustain: float,
    parts: set[str],
) -> dict:
    """GETs (part ``http``), ad-hoc scoring (``adhoc``, and the feature row for ``mlflow``)."""
    port = _port()
    server = start_server(env, port)
    base = f"http://127.0.0.1:{port}"
    pid = server.pid
    ours: dict = {}
    try:
        wait_up(f"{base}/readyz")
        print(f"HTTP benchmarks start, {_load_average()}")
        for label, path in (
            ("risk list (25)", "/api/v1/risk-lists/me?limit=25"),
            ("stored explanation", "/api/v1/persons/p-0000003/explanation"),
        ):
            if "http" not in parts:
                break
            closed = _load(base + path, worker, seconds, server_pid=pid)
            print(f"GET {label}, closed loop: {_figures(closed)} (target >= 1500 req/s)")
            opened = _load(base + path, worker, sustain, rate=500, server_pid=pid)
            print(
                f"GET {label} at 500 req/s for {sustain:.0f} s: p50 {opened['p50_ms']} ms, "
                f"p99 {opened['p99_ms']} ms, errors {opened['errors']} of "
                f"{opened['requests']} (target p99 < 10 ms, 0 errors)"
            )
        if not parts & {"adhoc", "mlflow"}:
            return ours
        url = base + "/api/v1/score/features"
        one = json.dumps({"features": row, "outcomes": ["relapse"]})
        first = _post(url, integrator, one)["results"][0]  # also builds the one-row tables
        ours = _load(url, integrator, seconds, body=one, server_pid=pid)
        ours["single"] = _load(url, integrator, min(seconds, 5), body=one, conns=1)
        ours["p"], ours["model"] = first["p"], first["model"]
        print(
            "ad-hoc, one supplied feature row (POST /score/features), score + explanation, "
            f"one outcome: {_figures(ours)}; one connection: p50 {ours['single']['p50_ms']} ms "
            f"(target >= 700 req/s), {_load_average()}"
        )
        if "adhoc" in parts:
            both = _load(
                url, integrator, seconds, body=json.dumps({"features": row}), server_pid=pid
            )
            print(f"ad-hoc, one supplied feature row, both outcomes: {_figures(both)}")
            hurl = base + "/api/v1/score/history"
            hbody = json.dumps(history)
            _post(hurl, integrator, hbody)
            hist = _load(hurl, integrator, seconds, body=hbody, server_pid=pid)
            print(
                f"ad-hoc, person + {len(history['events'])} events in the input contract "
                f"(POST /score/history: validation + feature engine per request), both "
                f"outcomes: {_figures(hist)} (no target)"
            )
        print(f"HTTP benchmarks end, {_load_average()}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return ours


def _bench_mlflow(env: dict[str, str], row: dict[str, float], seconds: float, ours: dict) -> None:
    """``mlflow models serve`` (1 worker) on the same registered model, row and client."""
    import httpx

    mport = _port()
    log = Path(tempfile.mkstemp(prefix="mlflow-serve-", suffix=".log")[1])
    with log.open("wb") as out:
        mlf = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "models",
                "serve",
                "-m",
                "models:/sunflower-relapse@champion",
                "--env-manager",
                "local",
                "--workers",
                "1",
                "-p",
                str(mport),
                "-h",
                "127.0.0.1",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # it forks workers: stop the whole group
        )
    try:
        url = f"http://127.0.0.1:{mport}/invocations"
        wait_up(f"http://127.0.0.1:{mport}/ping", 180)
        names = list(row)
        payload = json.dumps({"dataframe_split": {"columns": names, "data": [list(row.values())]}})
        first = httpx.post(url, content=payload, headers={"Content-Type": "application/json"})
        first.raise_for_status()
        p = float(np.ravel(first.json()["predictions"])[0])
        print(
            f"mlflow models serve starts, {_load_average()}; same row, its p {p:.6f}, "
            f"ours {ours['p']:.6f} ({ours['model']['name']} v{ours['model']['version']})"
        )
        theirs = _load(url, "none", seconds, body=payload, server_pid=mlf.pid)
        theirs["single"] = _load(url, "none", min(seconds, 5), body=payload, conns=1)
        print(
            "side by side: same registered model, same feature row, same client "
            f"(benchmarks/loadgen.py, 16 connections, {seconds:.0f} s closed loop), one server "
            "process each"
        )
        for label, r in (
            ("ours: POST /score/features, p + explanation", ours),
            ("mlflow models serve: /invocations, p only  ", theirs),
        ):
            print(f"  {label}: {_figures(r)}; one connection: p50 {r['single']['p50_ms']} ms")
        if theirs["rps"]:
            cpu = theirs["server_cpu_us"] / ours["server_cpu_us"] if ours["server_cpu_us"] else 0
            print(
                f"ratio ours / mlflow serve: {ours['rps'] / theirs['rps']:.1f}x req/s "
                f"(aim >= 3x), {cpu:.1f}x less server CPU per request, {_load_average()}"
            )
    except RuntimeError:
        print(f"mlflow models serve did not come up; its output:\n{log.read_text()[-3000:]}")
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(mlf.pid, signal.SIGTERM)
        try:
            mlf.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(mlf.pid, signal.SIGKILL)
            mlf.wait()


if __name__ == "__main__":
    main()
