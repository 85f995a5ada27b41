"""Embedded vs Spark (local[2]): the features job (features + both labels) on one district.

A simulated district (2023–2025) is scored at one as_of (2025-12-01) by
``features.jobs.run_features_job`` and by
``features.engine.spark.run_spark_features_job`` in the same process, the Spark job
twice (cold JVM, then warm). Prints rows, seconds, the embedded job's max RSS
(measured before Spark starts) and the warm ratio; checks the label rates agree.
``SUNFLOWER_BENCH_SPARK_PERSONS`` (default 20000, comma-separated for several sizes)
sets the district sizes. Run with ``python -m benchmarks spark``.
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
import pandas as pd
import pyarrow.parquet as pq
from simulator import simulate
from features.jobs import run_features_job
from features.engine.spark import run_spark_features_job, spark_session
n, out = int(sys.argv[1]), Path(sys.argv[2])
simulate(n, date(2023, 1, 1), date(2025, 12, 31), 20261206, out, truth=False)
events = pq.ParquetFile(out / "events.parquet").metadata.num_rows
dates = [pd.Timestamp("2025-12-01")]
src = (out / "persons.parquet", out / "events.parquet")
t = time.perf_counter()
emb = run_features_job(*src, out=out / "embedded", dates=dates)
embedded_s = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
t = time.perf_counter()
spark = spark_session("local[2]")
cold = run_spark_features_job(*src, out=out / "spark", dates=dates, spark=spark)
cold_s = time.perf_counter() - t
t = time.perf_counter()
run_spark_features_job(*src, out=out / "spark2", dates=dates, spark=spark)
warm_s = time.perf_counter() - t
print(json.dumps({"persons": n, "events": events, "rows": emb["rows"],
                  "embedded_s": embedded_s, "embedded_rss_mb": rss,
                  "spark_cold_s": cold_s, "spark_warm_s": warm_s,
                  "same_rows": emb["rows"] == cold["rows"],
                  "same_label_rates": emb["label_rates"] == cold["label_rates"]}))
"""


def main() -> None:
    sizes = os.environ.get("SUNFLOWER_BENCH_SPARK_PERSONS", "20000")
    env = os.environ | {"SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")}
    print("| people | events | rows | embedded | RSS | Spark cold | Spark warm | warm ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes.split(","):
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, size.strip(), out],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        assert r["same_rows"] and r["same_label_rates"], r
        print(
            f"| {r['persons']:,} | {r['events']:,} | {r['rows']:,} | {r['embedded_s']:.1f} s "
            f"| {r['embedded_rss_mb']:.0f} MB | {r['spark_cold_s']:.1f} s "
            f"| {r['spark_warm_s']:.1f} s | {r['spark_warm_s'] / r['embedded_s']:.0f}x |"
        )
