"""Label and cohort configuration (``labels.yaml``), versioned and strict.

Contract: :func:`load_label_config` parses the YAML into pydantic models with
``extra="forbid"`` so a typo is an error, not a silent default. The event
filters are checked against :mod:`features.contract` (via
:class:`features.catalog.EventFilter`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from features.catalog import EventFilter

LABELS_PATH = Path(__file__).with_name("labels.yaml")
Outcome = Literal["relapse", "loss_of_contact"]
OUTCOMES: tuple[Outcome, ...] = ("relapse", "loss_of_contact")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CohortConfig(_Strict):
    exclude_transferred_out: bool = True


class CensoringConfig(_Strict):
    unknown_when_censored: bool = True


class DerivedRule(_Strict):
    """Loss of contact derived from silence or missed check-ins (window-local)."""

    enabled: bool = False
    no_contact_days: int = Field(default=30, ge=1)
    missed_in_a_row: int = Field(default=2, ge=1)


class OutcomeConfig(_Strict):
    positive: tuple[EventFilter, ...]
    derived: DerivedRule = DerivedRule()


class LabelConfig(_Strict):
    """The parsed ``labels.yaml``. Build with :func:`load_label_config`."""

    config_version: str
    horizon_days: int = Field(default=90, ge=1)
    cohort: CohortConfig = CohortConfig()
    censoring: CensoringConfig = CensoringConfig()
    outcomes: dict[Outcome, OutcomeConfig]


@cache
def load_label_config(path: Path = LABELS_PATH) -> LabelConfig:
    """Parse and check the label configuration (cached per path)."""
    with open(path, encoding="utf-8") as fh:
        return LabelConfig.model_validate(yaml.safe_load(fh))
