"""One monitoring pass: closed runs only, headline figures, MLflow metrics per run date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.monitoring.job import log_headline, run_monitor
from tests.models.monitoring.test_verdict import _reference, _run


class _Client:
    def __init__(self) -> None:
        self.logged: list[tuple] = []

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        self.logged.append((run_id, key, value, timestamp, step))


def test_a_pass_uses_only_closed_runs_and_logs_its_headline() -> None:
    rng = np.random.default_rng(10)
    reference = _reference(rng)
    runs = [_run(rng, f"2025-{m:02d}-01", 2000) for m in range(1, 7)]
    history = pd.concat(runs[:-1], ignore_index=True)
    labels = (rng.random(len(history)) < history["p"].to_numpy()).astype(float)
    today = runs[-1]
    result = run_monitor(
        reference,
        today.drop(columns="p"),
        today["p"].to_numpy(),
        history,
        labels,
        outcome="relapse",
        as_of=pd.Timestamp("2025-06-01"),
        observed_until=pd.Timestamp("2025-06-01"),
        horizon_days=90,
    )
    district = result.closed[result.closed["scope"] == "district"]
    # closed on 2025-06-01: as_of + 90 + 14 days <= then -> January and February
    assert sorted(district["as_of"].dt.month) == [1, 2]
    head = result.headline()
    assert head["verdict_level"] == 0.0 and result.verdict.level == "ok"
    assert 0 < head["expected_precision_at_10pct"] < 1 and head["score_psi"] < 0.05
    assert abs(head["realised_minus_expected_precision_at_10pct"]) < 0.15
    assert result.sentences[0].startswith("复吸模型运行正常")
    client = _Client()
    log_headline(client, "run-1", result)
    keys = {k for _, k, *_ in client.logged}
    assert "monitor.verdict_level" in keys and "monitor.realised_precision_at_10pct" in keys
    stamps = {t for *_, t, _ in client.logged}
    assert stamps == {int(pd.Timestamp("2025-06-01").timestamp() * 1000)}
