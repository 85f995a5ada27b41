"""Feature pipeline speed and memory (issue 4).

Prints: one as_of for 1,000,000 people x ~50 events (50 M events read from
Parquet); and a panel of 200,000 people x 24 monthly as_of. (The per-person
pandas ``groupby().apply()`` reference it once timed, ~830x slower per row, is
gone: the SQL compiler is the engine's oracle.) Each measurement runs in its own
child process that reports its own peak RSS (``VmHWM``). Data: the simulator when
it is importable and ``BENCH_SIMULATOR=1``, else a quick numpy generator (same contract), cached
under ``$SUNFLOWER_BENCH_DIR`` (default ``/tmp/sunflower-bench``).

Run: ``python -m benchmarks features`` (add ``small`` for a 10x smaller run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import DRUGS, EVENT_RESULTS, EVENT_TYPES

BENCH_DIR = Path(os.environ.get("SUNFLOWER_BENCH_DIR", "/tmp/sunflower-bench"))
AS_OF = "2024-07-01"
_TYPE_P = {
    "check_in": 0.34,
    "urine_test": 0.2,
    "hair_test": 0.03,
    "home_visit": 0.1,
    "counselling": 0.07,
    "peer_education": 0.05,
    "family_contact": 0.05,
    "employment_start": 0.01,
    "employment_end": 0.01,
    "controlled_medicine_purchase": 0.05,
    "leave_notice": 0.03,
    "transfer_out": 0.01,
    "transfer_in": 0.01,
    "lost_contact": 0.01,
    "contact_restored": 0.01,
    "program_exit": 0.02,
}


def generate(persons: int, events_per_person: int, out: Path, seed: int = 7) -> Path:
    """Write persons.parquet / events.parquet in the input contract (numpy, fast)."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "events.parquet").exists():
        return out
    rng = np.random.default_rng(seed)
    ids = pa.array([f"p-{i:07d}" for i in range(persons)])
    start = np.datetime64("2021-01-01") + rng.integers(0, 1300, persons).astype("timedelta64[D]")
    pq.write_table(
        pa.table(
            {
                "person_id": ids,
                "sex": rng.choice(["M", "F"], persons, p=[0.8, 0.2]),
                "birth_year": rng.integers(1960, 2003, persons),
                "district": np.full(persons, "示例区"),
                "town": rng.choice(["东镇", "西镇"], persons),
                "worker_id": np.char.add("w-", (np.arange(persons) // 20).astype(str)),
                "program": rng.choice(["community_detox", "community_rehab"], persons),
                "program_start": start.astype("datetime64[us]"),
                "program_end": (start + np.timedelta64(1094, "D")).astype("datetime64[us]"),
                "primary_drug": rng.choice(list(DRUGS), persons),
                "first_use_year": pa.array(
                    rng.integers(1980, 2020, persons), mask=rng.random(persons) < 0.1
                ),
                "prior_compulsory_detox": rng.integers(0, 4, persons),
                "household": rng.choice(["local", "non_local"], persons),
                "living": rng.choice(["with_family", "alone", "other"], persons),
                "marital": pa.nulls(persons, pa.string()),
                "education": pa.nulls(persons, pa.string()),
            }
        ),
        out / "persons.parquet",
    )
    writer = None
    for lo in range(0, persons, 200_000):
        hi = min(lo + 200_000, persons)
        n = (hi - lo) * events_per_person
        who = np.repeat(np.arange(lo, hi), events_per_person)
        types = rng.choice(len(EVENT_TYPES), n, p=[_TYPE_P[t] for t in EVENT_TYPES])
        ts = (
            start[who].astype("datetime64[s]")
            + rng.integers(0, 900 * 86400, n).astype("timedelta64[s]")
        ).astype("datetime64[us]")
        late = np.where(rng.random(n) < 0.3, rng.integers(0, 10 * 86400, n), 0)
        results = np.empty(n, dtype=object)
        for code, name in enumerate(EVENT_TYPES):
            allowed = EVENT_RESULTS[name]
            mask = types == code
            results[mask] = rng.choice(allowed, mask.sum()) if allowed else None
        table = pa.table(
            {
                "event_id": pa.array(
                    np.char.add(
                        "e-",
                        np.arange(lo * events_per_person, lo * events_per_person + n).astype(str),
                    )
                ),
                "person_id": pa.DictionaryArray.from_arrays(
                    pa.array(who - lo, pa.int32()), ids[lo:hi]
                ),
                "ts": ts,
                "recorded_at": ts + late.astype("timedelta64[s]"),
                "type": pa.DictionaryArray.from_arrays(
                    pa.array(types, pa.int32()), pa.array(EVENT_TYPES)
                ),
                "result": pa.array(results, pa.string()),
                "value": np.where(rng.random(n) < 0.1, rng.integers(1, 10, n), np.nan),
                "source": pa.nulls(n, pa.string()),
            }
        )
        writer = writer or pq.ParquetWriter(out / "events.parquet", table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return out


def _cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU seconds of this process so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _peak_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _child(kind: str, data: str) -> None:
    from features.jobs import run_features_job

    d = Path(data)
    t0 = time.perf_counter()
    if kind == "as_of":
        m = run_features_job(
            d / "persons.parquet", d / "events.parquet", as_of=AS_OF, out=d / "out_as_of"
        )
    elif kind == "panel":
        m = run_features_job(
            d / "persons.parquet",
            d / "events.parquet",
            panel=("2022-07-01", "2024-06-01", "1M"),
            out=d / "out_panel",
        )
    else:
        raise SystemExit(f"unknown measurement {kind!r}")
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - t0,
                "cpu_seconds": sum(_cpu_seconds()),
                "cpu_user_sys": _cpu_seconds(),
                "load_avg": os.getloadavg()[0],
                "peak_gb": _peak_gb(),
                "rows": m["rows"],
                "manifest": m,
            },
            default=str,
        )
    )


def _measure(kind: str, data: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_features", "--child", kind, str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(scale: float = 1.0) -> None:
    big = generate(int(1_000_000 * scale), 50, BENCH_DIR / f"big-{scale}")
    mid = generate(int(200_000 * scale), 50, BENCH_DIR / f"mid-{scale}")
    r = _measure("as_of", big)
    m = r["manifest"]
    print(
        f"one as_of: {m['data']['persons']:,} people, {m['data']['events']:,} events -> "
        f"{r['rows']:,} rows x {len(m['features'])} features: {r['seconds']:.1f} s "
        f"(CPU {r['cpu_seconds']:.1f} s: user {r['cpu_user_sys'][0]:.1f}, "
        f"sys {r['cpu_user_sys'][1]:.1f}; load avg {r['load_avg']:.1f}), "
        f"peak {r['peak_gb']:.2f} GB (targets 20 s, 4 GB); stages {m['stage_seconds']}"
    )
    r = _measure("panel", mid)
    m = r["manifest"]
    print(
        f"panel: {m['data']['persons']:,} people x {len(m['as_of_dates'])} monthly as_of -> "
        f"{r['rows']:,} rows (+ labels): {r['seconds']:.1f} s (CPU {r['cpu_seconds']:.1f} s, "
        f"load avg {r['load_avg']:.1f}), peak {r['peak_gb']:.2f} GB "
        f"(targets 90 s, 8 GB); stages {m['stage_seconds']}; "
        f"rates {json.dumps(m['label_rates'])}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main(0.1 if "small" in sys.argv[1:] else 1.0)
