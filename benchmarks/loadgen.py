"""A small HTTP/1.1 load generator (asyncio, keep-alive), run as its own process.

``python -m benchmarks.loadgen URL TOKEN --seconds S [--rate R] [--conns C] [--body JSON]
[--server-pid PID]`` prints one JSON line: requests, errors, req/s, latency
percentiles (ms), the CPU time the generator itself used, and — with
``--server-pid`` — the CPU time (user + system, all threads) the server
process used during the run, per request (``server_cpu_us``): the server's
cost of a request, which unlike req/s does not depend on how busy the shared
machine is. Closed loop without ``--rate`` (as fast as the server answers);
open loop with ``--rate`` (requests are scheduled at fixed times and latency
is measured from the scheduled time, so a stall is not hidden: no coordinated
omission). The client runs on uvloop when it is installed (less of the shared
CPU taken from the server; ``LOADGEN_ASYNCIO=1`` runs it on asyncio's own
loop instead); every server is measured with the same client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np


def _request(url: str, token: str, body: str | None) -> bytes:
    u = urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    method = "POST" if body is not None else "GET"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
    )
    if body is None:
        return (head + "\r\n").encode()
    data = body.encode()
    return (
        head + f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


def process_cpu(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` and its descendants (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for p in cpu:
        q = p
        while q > 1 and q != pid:
            q = parent.get(q, 0)
        if q == pid:
            total += cpu[p]
    return total


async def run(
    url: str,
    token: str,
    seconds: float,
    rate: float | None,
    conns: int,
    body: str | None,
    server_pid: int | None = None,
) -> dict:
    u = urlsplit(url)
    req = _request(url, token, body)
    lat: list[float] = []
    errors = 0
    start = time.perf_counter()
    end = start + seconds
    interval = conns / rate if rate else 0.0

    async def worker(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        n = 0
        while True:
            if rate:
                due = start + k * (1.0 / rate) + n * interval
                if due >= end:
                    break
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = due
            else:
                t0 = time.perf_counter()
                if t0 >= end:
                    break
            try:
                status = await asyncio.wait_for(_one(reader, writer, req), timeout=10)
            except Exception:
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(u.hostname, u.port)
                n += 1
                continue
            if status != 200:
                errors += 1
            lat.append(time.perf_counter() - t0)
            n += 1
        writer.close()

    cpu0 = time.process_time()
    server0 = process_cpu(server_pid) if server_pid else 0.0
    await asyncio.gather(*(worker(k) for k in range(conns)))
    took = time.perf_counter() - start
    client_cpu = time.process_time() - cpu0
    server_cpu = process_cpu(server_pid) - server0 if server_pid else None
    a = np.asarray(lat) * 1000 if lat else np.zeros(1)
    done = max(len(lat) + errors, 1)
    return {
        "requests": len(lat) + errors,
        "errors": errors,
        "seconds": round(took, 2),
        "rps": round(len(lat) / took, 1),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "max_ms": round(float(a.max()), 3),
        "client_cpu_us": round(client_cpu / done * 1e6, 1),
        "server_cpu_us": round(server_cpu / done * 1e6, 1) if server_cpu is not None else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=None)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--body", default=None)
    ap.add_argument("--server-pid", type=int, default=None)
    a = ap.parse_args()
    job = run(a.url, a.token, a.seconds, a.rate, a.conns, a.body, a.server_pid)
    print(json.dumps(_run_loop(job)))


def _run_loop(job: Any) -> dict:
    if not os.environ.get("LOADGEN_ASYNCIO"):
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(job)
    return asyncio.run(job)


if __name__ == "__main__":
    main()
