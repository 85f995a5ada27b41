"""A simulated district shared by the simulator tests (built once per session)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from simulator import SimSummary, simulate

PERSONS = 10_000
START, END = date(2023, 1, 1), date(2025, 12, 31)


@pytest.fixture(scope="session")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimSummary]:
    out = tmp_path_factory.mktemp("district")
    return out, simulate(PERSONS, START, END, seed=20261128, out=out)


@pytest.fixture(scope="session")
def tables(district) -> dict[str, pd.DataFrame]:
    out, _ = district
    return {
        name: pd.read_parquet(out / f"{name}.parquet") for name in ("persons", "events", "truth")
    }
