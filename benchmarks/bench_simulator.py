"""Simulator speed: 100,000 people (with truth) and 1,000,000 people (without).

Each run happens in a child process so its peak memory (max RSS) is its own.
Targets (issue 3): 100k over 3 years < 30 s; 1M (~50 M events) < 5 min and
< 8 GB. Run with ``python -m benchmarks simulator``; set
``SUNFLOWER_BENCH_SIM_SIZES=100000`` to skip the large run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

_CHILD = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
from simulator import simulate
n, truth, out = int(sys.argv[1]), sys.argv[2] == "1", Path(sys.argv[3])
t = time.perf_counter()
s = simulate(n, date(2023, 1, 1), date(2025, 12, 31), seed=1, out=out, truth=truth)
wall = time.perf_counter() - t
use = resource.getrusage(resource.RUSAGE_SELF)
rss, cpu = use.ru_maxrss / 2**20, use.ru_utime + use.ru_stime
print(json.dumps({"wall": wall, "cpu": cpu, "rss_gib": rss, "events": s.events,
                  "truth_rows": s.truth_rows}))
"""


def _run(persons: int, truth: bool) -> dict:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(persons), "1" if truth else "0", out],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    sizes = os.environ.get("SUNFLOWER_BENCH_SIM_SIZES", "100000,1000000")
    # cpu_s (user + system) is what the wall time would be on an idle machine
    # for this single-threaded loop; the two differ when others share the cores.
    print("persons     truth  wall_s   cpu_s  peak_rss_GiB      events  truth_rows")
    for persons in (int(s) for s in sizes.split(",")):
        truth = persons <= 200_000
        r = _run(persons, truth)
        print(
            f"{persons:>9,}  {'yes' if truth else 'no':>5}  {r['wall']:>6.1f}  {r['cpu']:>6.1f}  "
            f"{r['rss_gib']:>12.2f}  {r['events']:>10,}  {r['truth_rows']:>10,}"
        )
