"""A small HTTP/1.1 load generator (asyncio, keep-alive), run as its own process.

``python -m benchmarks.loadgen URL TOKEN --seconds S [--rate R] [--conns C] [--body JSON]``
prints one JSON line: requests, errors, req/s and latency percentiles (ms).
Closed loop without ``--rate`` (as fast as the server answers); open loop with
``--rate`` (requests are scheduled at fixed times and latency is measured
from the scheduled time, so a stall is not hidden: no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
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


async def run(
    url: str, token: str, seconds: float, rate: float | None, conns: int, body: str | None
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

    await asyncio.gather(*(worker(k) for k in range(conns)))
    took = time.perf_counter() - start
    a = np.asarray(lat) * 1000 if lat else np.zeros(1)
    return {
        "requests": len(lat) + errors,
        "errors": errors,
        "seconds": round(took, 2),
        "rps": round(len(lat) / took, 1),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "max_ms": round(float(a.max()), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=None)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--body", default=None)
    a = ap.parse_args()
    print(json.dumps(asyncio.run(run(a.url, a.token, a.seconds, a.rate, a.conns, a.body))))


if __name__ == "__main__":
    main()
