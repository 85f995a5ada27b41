"""Label rates on simulated data match the simulator's truth within sampling error (slow)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.labels import build_labels


@pytest.mark.slow
@pytest.mark.parametrize("outcome", ["relapse", "loss_of_contact"])
def test_label_rates_match_truth(tmp_path: Path, outcome: str) -> None:
    from simulator import simulate

    simulate(1500, date(2023, 1, 1), date(2024, 12, 31), seed=11, out=tmp_path)
    persons = pd.read_parquet(tmp_path / "persons.parquet")
    events = pd.read_parquet(tmp_path / "events.parquet")
    truth = pd.read_parquet(tmp_path / "truth.parquet")
    truth = truth[(truth["outcome"] == outcome) & (truth["horizon_days"] == 90)]
    truth = truth[pd.to_datetime(truth["as_of"]) <= pd.Timestamp("2024-09-30")].reset_index(
        drop=True
    )
    entities = pd.DataFrame(
        {"person_id": truth["person_id"], "as_of": pd.to_datetime(truth["as_of"])}
    )
    got = build_labels(entities, persons=persons, events=events, outcome=outcome)  # type: ignore[arg-type]
    # The truth counts a censored row as not positive (docs/simulator.md); so do we here.
    observed = float((got["label"] == 1).sum()) / len(got)
    p = truth["p"].to_numpy()
    se = float(np.sqrt((p * (1 - p)).sum()) / len(p))
    assert abs(observed - p.mean()) < 4 * se + 0.01, (observed, p.mean(), se)
