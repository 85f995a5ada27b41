"""The hidden state behind the truth, replayed in memory (diagnostics only).

Contract: :func:`hidden_state` re-runs exactly the simulation
:func:`simulator.simulate` would run for the same arguments (same
random streams, so the same world) and returns, for every truth row
(person_id, as_of), the hidden state at as_of 00:00 that the truth p was
computed from: ``using``, ``absconded`` (not yet flagged) and the six latent
factors. Nothing is written; no model may use it as an input. It exists so
that diagnostics (``research/quality_ceiling.py``) can say *which* hidden
state a model's gap to the oracle is made of.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from simulator.config import SimConfig, load_config
from simulator.engine import seeded_run
from simulator.io import person_ids


def hidden_state(
    persons: int, start: date, end: date, seed: int, config: SimConfig | None = None
) -> pd.DataFrame:
    """One row per truth row: person_id, as_of and the hidden state (booleans)."""
    cfg = config or load_config()
    n_days = (end - start).days + 1
    _, _, rows = seeded_run(cfg, persons, start, n_days, seed)
    assert rows is not None
    person = np.concatenate(rows.person)
    day = np.concatenate(rows.day)
    pid = np.asarray(person_ids(persons).to_pylist(), dtype=object)
    frame = pd.DataFrame(
        {
            "person_id": pid[person],
            "as_of": pd.to_datetime(start) + pd.to_timedelta(day, unit="D"),
        }
    )
    for name, parts in rows.hidden.items():
        frame[name] = np.concatenate(parts)
    frame["as_of"] = frame["as_of"].astype("datetime64[us]")
    return frame
