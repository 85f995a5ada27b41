"""The simulator's single YAML config: complete, documented, strict."""

from __future__ import annotations

import pydantic
import pytest
import yaml

from simulator.config import DEFAULT_PATH, SimConfig, load_config


def _raw() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


def test_default_config_loads():
    cfg = load_config()
    assert cfg.truth.horizon_days == 90
    assert cfg.relapse.prior_detox == pytest.approx(2.33)


def test_a_misspelt_key_is_an_error():
    raw = _raw()
    raw["relapse"]["prior_detoks"] = 2.0
    with pytest.raises(pydantic.ValidationError, match="prior_detoks"):
        SimConfig.model_validate(raw)


def test_shares_must_add_up():
    raw = _raw()
    raw["population"]["drug_mix"]["heroin"] = 0.9
    with pytest.raises(pydantic.ValidationError, match="add up to 1"):
        SimConfig.model_validate(raw)
