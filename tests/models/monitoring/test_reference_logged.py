"""Training logs the reference profile with the model version (aggregates only)."""

from __future__ import annotations

import json
from pathlib import Path

from models import registry
from models.config import ModelConfig
from models.monitoring.reference import SCHEMA, load_reference, reference_for_version
from models.panel import InputData
from models.retrain import train_and_decide


def test_the_registered_version_carries_its_reference(
    inputs: InputData, cfg: ModelConfig, home: Path
) -> None:
    client = registry.connect()
    decision = train_and_decide(inputs, "relapse", cfg, client)
    assert decision.version is not None
    mv = client.get_model_version(registry.model_name("relapse"), decision.version)
    ref = load_reference(client, str(mv.run_id))
    assert ref["schema"] == SCHEMA and ref["outcome"] == "relapse"
    assert ref["district"]["rows"] > 0 and ref["expected"]["precision_at_10pct"] > 0
    assert ref["realised"]["n"] > 0  # the labelled reference dates (validation)
    assert set(ref["importance"]) == set(decision.result.feature_names)  # type: ignore[union-attr]
    text = json.dumps(ref, ensure_ascii=False)
    assert not any(pid in text for pid in inputs.persons["person_id"].head(50))
    assert reference_for_version(client, "relapse", decision.version) == ref
