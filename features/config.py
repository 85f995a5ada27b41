"""Label and cohort configuration (``labels.yaml``), versioned and strict.

Contract: :func:`load_label_config` parses the YAML into pydantic models with
``extra="forbid"`` so a typo is an error, not a silent default. The event
filters are checked against :mod:`features.contract` (via
:class:`features.catalog.EventFilter`).

Where the file comes from (:func:`label_config_path`): an explicit path
(``--labels FILE``, which sets ``SUNFLOWER_LABELS`` for the whole run), else
``SUNFLOWER_HOME/config/labels.yaml`` when it exists, else the shipped
default next to this module. The shipped file is the default; a
district's own rules live outside the package.
:func:`config_record` is what every features manifest and MLflow run records
of the file in force (path, version, sha256 of the parsed values).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from common.settings import get_settings
from features.catalog import EventFilter

LABELS_PATH = Path(__file__).with_name("labels.yaml")
Outcome = Literal["relapse", "loss_of_contact"]
OUTCOMES: tuple[Outcome, ...] = ("relapse", "loss_of_contact")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CohortConfig(_Strict):
    exclude_transferred_out: bool = True


class CensoringConfig(_Strict):
    """What a window that is known to be short at as_of means (DESIGN §3).

    ``planned_end: truncate`` ends the window at the planned end of the
    agreement (the served probability is "risk within the horizon, or until
    the planned end if that comes first"); ``drop`` leaves every row whose
    window crosses the planned end out, whatever happened. Either way the
    decision uses only the planned end, which is known at as_of. A window that
    ends after the data cutoff is always unknown, whatever happened. Unplanned
    exits (``program_exit``, a ``transfer_out`` not followed by a
    ``transfer_in``) are competing events: the outcome counts only before
    them, and a window they end without an outcome is a 0 (the probability is
    that of the outcome being recorded while the person is under this
    district's supervision — the cumulative incidence).
    """

    planned_end: Literal["truncate", "drop"] = "truncate"


class ConsecutiveRule(_Strict):
    """k consecutive intervals each with a positive or a missing required test.

    Intervals of ``interval_days`` start at as_of; an interval is bad when an
    event of ``positive`` falls in it, or — ``missing_counts_as_positive`` —
    when it ends inside the observed window and holds no event of
    ``required``. The outcome happens when the k-th bad interval in a row
    completes (or at its positive event, if earlier).
    """

    enabled: bool = False
    interval_days: int = Field(default=7, ge=1)
    k: int = Field(default=4, ge=1)
    required: tuple[EventFilter, ...] = (EventFilter(types=("urine_test",)),)
    missing_counts_as_positive: bool = True


class DerivedRule(_Strict):
    """Loss of contact derived from silence or missed check-ins (window-local)."""

    enabled: bool = False
    no_contact_days: int = Field(default=30, ge=1)
    missed_in_a_row: int = Field(default=2, ge=1)


class OutcomeConfig(_Strict):
    positive: tuple[EventFilter, ...]
    derived: DerivedRule = DerivedRule()
    consecutive: ConsecutiveRule = ConsecutiveRule()


class LabelConfig(_Strict):
    """The parsed ``labels.yaml``. Build with :func:`load_label_config`."""

    config_version: str
    horizon_days: int = Field(default=90, ge=1)
    cohort: CohortConfig = CohortConfig()
    censoring: CensoringConfig = CensoringConfig()
    outcomes: dict[Outcome, OutcomeConfig]
    #: the file it was read from (set by :func:`load_label_config`)
    _source: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        return self._source


def home_config_dir() -> Path:
    """``SUNFLOWER_HOME/config``: where a district keeps its own configuration files."""
    return get_settings().home / "config"


def use_label_file(path: Path | str) -> None:
    """Make ``path`` the label file in force for this process (``--labels FILE``).

    Set as ``SUNFLOWER_LABELS`` so every component of the run (features,
    training, scoring) and its subprocesses read the same rules.
    """
    resolved = Path(path).resolve()
    if not resolved.exists():
        raise FileNotFoundError(f"label configuration {path} does not exist")
    os.environ["SUNFLOWER_LABELS"] = str(resolved)


def label_config_path(path: Path | str | None = None) -> Path:
    """The label file in force: explicit, else ``SUNFLOWER_LABELS``, else the home's,
    else the shipped default."""
    if path is not None:
        return Path(path)
    if os.environ.get("SUNFLOWER_LABELS"):
        return Path(os.environ["SUNFLOWER_LABELS"])
    home = home_config_dir() / "labels.yaml"
    return home if home.exists() else LABELS_PATH


def load_label_config(path: Path | str | None = None) -> LabelConfig:
    """Parse and check the label configuration in force (cached per file and mtime)."""
    resolved = label_config_path(path).resolve()
    return _load(resolved, resolved.stat().st_mtime_ns)


@cache
def _load(path: Path, _mtime: int) -> LabelConfig:
    with open(path, encoding="utf-8") as fh:
        try:
            config = LabelConfig.model_validate(yaml.safe_load(fh))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    config._source = str(path)
    return config


def config_record(config: BaseModel) -> dict[str, Any]:
    """Version, sha256 of the parsed values and the source file: recorded with every run."""
    values = config.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
    return {
        "config_version": values.get("config_version"),
        "sha256": digest,
        "source": getattr(config, "source", None),
    }
