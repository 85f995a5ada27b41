"""Model configuration: one versioned YAML parsed into strict pydantic models.

Contract: :func:`load_config` reads the file in force — an explicit path
(``--config FILE``), else ``SUNFLOWER_HOME/config/models.yaml`` when it exists,
else the shipped ``models/config/default.yaml`` — into :class:`ModelConfig`
with ``extra="forbid"`` everywhere, so a typo is an error that names the
key. :meth:`ModelConfig.fingerprint` is a stable hash of the parsed values
(recorded with every trained model).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from features.config import Outcome, home_config_dir

DEFAULT_CONFIG = Path(__file__).parent / "config" / "default.yaml"
_SPAN = re.compile(r"^(\d+)([DWMY])$")


def span_offset(span: str) -> pd.DateOffset:
    """``3M`` -> a 3-month offset (units D, W, M, Y)."""
    match = _SPAN.match(span.strip().upper())
    if not match:
        raise ValueError(f"span {span!r}: use a number and a unit D, W, M or Y (e.g. 3M)")
    n, unit = int(match.group(1)), match.group(2)
    if unit == "D":
        return pd.DateOffset(days=n)
    if unit == "W":
        return pd.DateOffset(weeks=n)
    return pd.DateOffset(months=n) if unit == "M" else pd.DateOffset(years=n)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _span(value: str) -> str:
    span_offset(value)
    return value


class PanelConfig(_Strict):
    """The training panel's as_of grid.

    ``grid: calendar`` puts everyone on the same dates (from ``start``, every
    ``every``); ``programme`` puts each person on dates relative to their own
    programme start (day ``first_day``, then every ``every``), for
    cohort-shaped records such as a 24-week treatment programme.
    ``horizon_days`` null means the label configuration's horizon.
    """

    start: str | None = None
    every: str = "1M"
    horizon_days: int | None = Field(default=None, ge=1)
    grid: Literal["calendar", "programme"] = "calendar"
    first_day: int = Field(default=0, ge=0)
    #: calendar grid: as_of dates this many days after each grid date (e.g. 0, 7, 14, 21)
    offsets_days: tuple[int, ...] = Field(default=(0,), min_length=1)

    _every = field_validator("every")(_span)


class FoldConfig(_Strict):
    n_folds: int = Field(default=3, ge=1)
    test_span: str = "3M"
    valid_span: str = "3M"
    step: str = "3M"
    min_train_dates: int = Field(default=6, ge=1)

    _spans = field_validator("test_span", "valid_span", "step")(_span)


class LightGBMConfig(_Strict):
    params: dict[str, Any]
    num_boost_round: int = Field(default=2000, ge=1)
    early_stopping_rounds: int = Field(default=150, ge=1)
    threads: int = Field(default=2, ge=1)
    seed: int = 0


class LogisticConfig(_Strict):
    C: float = Field(default=0.1, gt=0)
    max_iter: int = Field(default=2000, ge=10)


class RulePoint(_Strict):
    points: float
    cap: float | None = None


class MetricsConfig(_Strict):
    top_fraction: float = Field(default=0.10, gt=0, le=1)
    per_worker: int = Field(default=2, ge=1)
    ece_bins: int = Field(default=10, ge=2)
    tie_seed: int = 0


class FairnessConfig(_Strict):
    attributes: tuple[Literal["sex", "age_band", "household", "drug"], ...] = (
        "sex",
        "age_band",
        "household",
        "drug",
    )
    age_bands: tuple[int, ...] = (30, 40, 50)
    bounds: tuple[float, float] = (0.8, 1.25)
    min_group_size: int = Field(default=50, ge=1)
    min_group_positives: int = Field(default=20, ge=1)


class GateConfig(_Strict):
    min_roc_auc: float = 0.60
    max_ece: float = 0.05
    auc_tolerance: float = 0.01
    precision_tolerance: float = 0.02
    no_new_fairness_flags: bool = True


class ModelConfig(_Strict):
    """The parsed model configuration. Build with :func:`load_config`."""

    config_version: str
    panel: PanelConfig = PanelConfig()
    folds: FoldConfig = FoldConfig()
    exclude_features: tuple[str, ...] = ()
    lightgbm: LightGBMConfig
    logistic: LogisticConfig = LogisticConfig()
    rule: dict[Outcome, dict[str, RulePoint]]
    metrics: MetricsConfig = MetricsConfig()
    fairness: FairnessConfig = FairnessConfig()
    gates: GateConfig = GateConfig()
    #: the file it was read from (set by :func:`load_config`)
    _source: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        return self._source

    def fingerprint(self) -> str:
        """A short stable hash of every setting."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def updated(self, **changes: Any) -> ModelConfig:
        """A copy with nested changes, validated again (e.g. ``lightgbm={...}``)."""
        data = self.model_dump(mode="json")
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return ModelConfig.model_validate(data)


def model_config_path(path: Path | str | None = None) -> Path:
    """The model file in force: explicit, else the home's ``config/models.yaml``, else shipped."""
    if path is not None:
        return Path(path)
    home = home_config_dir() / "models.yaml"
    return home if home.exists() else DEFAULT_CONFIG


def load_config(path: Path | str | None = None) -> ModelConfig:
    """Parse and check the model configuration in force (see :func:`model_config_path`)."""
    resolved = model_config_path(path)
    with open(resolved, encoding="utf-8") as fh:
        try:
            config = ModelConfig.model_validate(yaml.safe_load(fh))
        except ValueError as exc:
            raise ValueError(f"{resolved}: {exc}") from exc
    config._source = str(resolved.resolve())
    return config
