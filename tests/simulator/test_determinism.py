"""Same seed, same bytes; another seed, other bytes; truth never changes the data."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from simulator import simulate

FILES = ("persons.parquet", "events.parquet", "truth.parquet")


def _digests(out: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((out / name).read_bytes()).hexdigest()
        for name in FILES
        if (out / name).exists()
    }


def _run(out: Path, seed: int, truth: bool = True) -> dict[str, str]:
    simulate(600, date(2024, 1, 1), date(2024, 12, 31), seed=seed, out=out, truth=truth)
    return _digests(out)


def test_same_seed_gives_the_same_bytes(tmp_path):
    first = _run(tmp_path / "a", seed=11)
    assert set(first) == set(FILES)
    assert _run(tmp_path / "b", seed=11) == first


def test_another_seed_gives_other_bytes(tmp_path):
    first, other = _run(tmp_path / "a", seed=11), _run(tmp_path / "b", seed=12)
    assert all(first[name] != other[name] for name in FILES)


def test_switching_truth_off_leaves_persons_and_events_unchanged(tmp_path):
    with_truth = _run(tmp_path / "a", seed=11)
    without = _run(tmp_path / "b", seed=11, truth=False)
    assert "truth.parquet" not in without
    assert without == {k: v for k, v in with_truth.items() if k != "truth.parquet"}
