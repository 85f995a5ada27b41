"""Audited requests while the daily job publishes (part ``publish`` of the serving benchmark).

Contract: :func:`bench_publish_wait` starts ``sunflower serve`` on the
benchmark's database, has one client GET the worker's risk list every 50 ms
(each request writes an audit line), runs ``sunflower score --date`` in
another process meanwhile, and prints the requests' latency before, during
and after the job. It shows what a worker opening the list sees while the
morning run is written: on SQLite the run's transaction holds the database's
one writer, on PostgreSQL it does not. Prints figures, asserts nothing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _summary(name: str, samples: list[tuple[float, float, int]]) -> str:
    if not samples:
        return f"{name}: no requests"
    ms = np.array([s[1] for s in samples]) * 1000
    bad = sum(1 for s in samples if s[2] != 200)
    return (
        f"{name}: {len(ms)} requests, p50 {np.percentile(ms, 50):.1f} ms, "
        f"p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms, non-200 {bad}"
    )


def bench_publish_wait(env: dict[str, str], token: str, as_of: date, port: int) -> None:
    """Latency of audited list requests before, during and after a scoring run."""
    from benchmarks.bench_serving import start_server, wait_up

    server = start_server(env, port)
    url = f"http://127.0.0.1:{port}/api/v1/risk-lists/me?limit=25"
    samples: list[tuple[float, float, int]] = []
    done = threading.Event()

    def client() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
            while not done.is_set():
                t = time.perf_counter()
                try:
                    code = c.get(url).status_code
                except httpx.HTTPError:
                    code = -1
                samples.append((t, time.perf_counter() - t, code))
                time.sleep(0.05)

    try:
        wait_up(f"http://127.0.0.1:{port}/readyz")
        thread = threading.Thread(target=client)
        thread.start()
        time.sleep(10)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "sunflower.cli", "score", "--date", as_of.isoformat()],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        t1 = time.perf_counter()
        time.sleep(10)
        done.set()
        thread.join()
    finally:
        done.set()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(f"publish: `sunflower score` in another process took {t1 - t0:.1f} s (with start-up)")
    print(_summary("publish: list requests before the job", [s for s in samples if s[0] < t0]))
    print(_summary("publish: during the job", [s for s in samples if t0 <= s[0] < t1]))
    print(_summary("publish: after the job", [s for s in samples if s[0] >= t1]))
