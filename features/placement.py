"""Placement bases (就业安置基地): the registry and each base's subsidy eligibility.

Contract. :func:`load_placement_config` reads ``placement.yaml`` (strict pydantic,
``extra="forbid"``): the subsidy ``rules`` and the ``bases`` registry (id, name,
district, town; optionally when the one-off sum was paid, and the base's own monthly
insurance cost). The file in force is an explicit path, else
``SUNFLOWER_HOME/config/placement.yaml``, else the shipped default (rules, no bases).

Events (the input contract, unchanged columns):

* a placement is an ``employment_start`` whose ``result`` is a base's id (any other
  result, or none, is employment elsewhere);
* its insured months are that event's ``value``: the months of social insurance the
  base has paid for this placement so far. A base reports them by sending the start
  again as a correction (same person, type and ``ts``, a new event id, recorded
  later) with the new figure — stored history is never rewritten, and a report as of
  any day uses the figure known that day (``recorded_at < as_of``, the engine's
  correction rule). Empty counts as 0 months.

:func:`eligibility` — at ``as_of`` (midnight: what was known before it), per base:

* **placed**: people with a placement at the base starting in the rolling window
  ``[as_of − window_years, as_of)`` (calendar years; a start exactly ``window_years``
  before as_of is inside);
* a person's **insured months** at the base: the sum over their placements there in
  the window; they **qualify** with at least ``min_insured_months``;
* **eligible**: at least ``min_people`` qualifying people; the **lump sum**
  (``lump_sum_yuan``) is due when eligible and not already paid before as_of
  (``lump_sum_paid_on``); once paid, never again;
* **insurance subsidy**: ``insurance_share`` × insured months × the monthly cost
  (the base's own, else the rules') summed over every placed person, qualifying or
  not;
* placements naming an id that is not in the registry are reported in a row of
  their own (``registered`` false, no money due), never dropped silently.

Returns :class:`Eligibility` (``bases``: one row per registered base, plus the
unknown ids; ``people``: one row per placed person per base). Pure: pandas in,
pandas out, nothing stored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.config import home_config_dir
from features.contract import CONTROL_CHARACTERS
from features.schedule import visible_events

PLACEMENT_PATH = Path(__file__).with_name("placement.yaml")
BASE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,39}$"
BASE_COLUMNS = (
    "base_id",
    "name",
    "district",
    "town",
    "registered",
    "placed",
    "qualifying",
    "insured_months",
    "eligible",
    "lump_sum_paid_on",
    "lump_sum_due_yuan",
    "insurance_subsidy_yuan",
    "total_due_yuan",
)
PEOPLE_COLUMNS = ("base_id", "person_id", "first_placed", "placements", "insured_months",
                  "qualifies", "insurance_subsidy_yuan")  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubsidyRules(_Strict):
    """The subsidy rule's numbers (defaults: domain facts, Fengxian)."""

    window_years: int = Field(default=3, ge=1, le=20)
    min_people: int = Field(default=5, ge=1)
    min_insured_months: float = Field(default=12, ge=0)
    lump_sum_yuan: float = Field(default=100_000, ge=0)
    insurance_share: float = Field(default=0.5, ge=0, le=1)
    monthly_insurance_cost_yuan: float = Field(default=1_800, ge=0)


class Base(_Strict):
    """One registered placement base."""

    id: str = Field(pattern=BASE_ID)
    name: str = Field(min_length=1, max_length=64)
    district: str = Field(min_length=1, max_length=64, pattern=r"^[^/\\]+$")
    town: str = Field(min_length=1, max_length=64, pattern=r"^[^/\\]+$")
    lump_sum_paid_on: date | None = None
    monthly_insurance_cost_yuan: float | None = Field(default=None, ge=0)

    @field_validator("name", "district", "town")
    @classmethod
    def _no_control(cls, value: str) -> str:
        if re.search(CONTROL_CHARACTERS, value):
            raise ValueError("control characters are not allowed")
        return value


class PlacementConfig(_Strict):
    """The parsed ``placement.yaml``."""

    config_version: str
    rules: SubsidyRules = SubsidyRules()
    bases: tuple[Base, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> PlacementConfig:
        ids = [b.id for b in self.bases]
        if len(set(ids)) != len(ids):
            raise ValueError("placement base ids must be unique")
        return self

    def registry(self) -> pd.DataFrame:
        """The bases as a frame: base_id, name, district, town, lump_sum_paid_on, cost."""
        return pd.DataFrame(
            {
                "base_id": [b.id for b in self.bases],
                "name": [b.name for b in self.bases],
                "district": [b.district for b in self.bases],
                "town": [b.town for b in self.bases],
                "lump_sum_paid_on": [b.lump_sum_paid_on for b in self.bases],
                "monthly_insurance_cost_yuan": [
                    self.rules.monthly_insurance_cost_yuan
                    if b.monthly_insurance_cost_yuan is None
                    else b.monthly_insurance_cost_yuan
                    for b in self.bases
                ],
            }
        )


def placement_config_path(path: Path | str | None = None) -> Path:
    """The file in force: explicit, else ``SUNFLOWER_PLACEMENT``, else the home's,
    else the shipped default."""
    if path is not None:
        return Path(path)
    if os.environ.get("SUNFLOWER_PLACEMENT"):
        return Path(os.environ["SUNFLOWER_PLACEMENT"])
    home = home_config_dir() / "placement.yaml"
    return home if home.exists() else PLACEMENT_PATH


def load_placement_config(path: Path | str | None = None) -> PlacementConfig:
    """Parse and check the placement file in force (cached per file and mtime)."""
    resolved = placement_config_path(path).resolve()
    return _load(resolved, resolved.stat().st_mtime_ns)


@cache
def _load(path: Path, _mtime: int) -> PlacementConfig:
    with open(path, encoding="utf-8") as fh:
        try:
            return PlacementConfig.model_validate(yaml.safe_load(fh))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


def write_placement_config(config: PlacementConfig, path: Path) -> None:
    """Write ``config`` as YAML (what the simulator and ``ingest`` install)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = config.model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def install_placement_config(source: Path) -> tuple[Path, PlacementConfig]:
    """Check ``source`` and make it the district's ``placement.yaml`` (home config).

    What ``sunflower ingest DIR`` does with ``DIR/placement.yaml`` (the simulator
    writes one); a file that does not parse raises ``ValueError`` naming it and
    nothing is installed.
    """
    config = load_placement_config(source)
    target = home_config_dir() / "placement.yaml"
    write_placement_config(config, target)
    return target, config


@dataclass(frozen=True)
class Eligibility:
    """Per base (``bases``) and per placed person and base (``people``), at ``as_of``."""

    as_of: date
    window_start: date
    bases: pd.DataFrame
    people: pd.DataFrame


def placements(events: pd.DataFrame, as_of: date | pd.Timestamp) -> pd.DataFrame:
    """Placements known before ``as_of``: person_id, base_id, start (ts), insured months."""
    at = pd.Timestamp(as_of).normalize()
    seen = visible_events(events, at)
    starts = seen.loc[(seen["type"] == "employment_start") & seen["result"].notna()]
    base = starts["result"].astype("string").str.strip()
    out = pd.DataFrame(
        {
            "person_id": starts["person_id"].astype("string").to_numpy(),
            "base_id": base.to_numpy(),
            "start": starts["ts"].to_numpy(dtype="datetime64[us]"),
            "insured_months": starts["value"].astype("float64").fillna(0.0).to_numpy(),
        }
    )
    out = out.loc[out["base_id"].fillna("") != ""]
    # equal versions recorded at the same instant count once (the same placement)
    return out.drop_duplicates(["person_id", "base_id", "start"], keep="last").reset_index(
        drop=True
    )


def eligibility(
    config: PlacementConfig, events: pd.DataFrame, as_of: date | pd.Timestamp
) -> Eligibility:
    """Each base's placed and qualifying people and the subsidy due at ``as_of``."""
    rules = config.rules
    at = pd.Timestamp(as_of).normalize()
    window_start = at - pd.DateOffset(years=rules.window_years)
    found = placements(events, at)
    found = found.loc[(found["start"] >= window_start) & (found["start"] < at)]
    registry = config.registry()
    cost = dict(zip(registry["base_id"], registry["monthly_insurance_cost_yuan"], strict=True))
    people = (
        found.groupby(["base_id", "person_id"], sort=True)
        .agg(
            first_placed=("start", "min"),
            placements=("start", "size"),
            insured_months=("insured_months", "sum"),
        )
        .reset_index()
    )
    people["qualifies"] = people["insured_months"] >= rules.min_insured_months
    per_month = people["base_id"].map(cost)  # NaN: not registered, nothing due
    people["insurance_subsidy_yuan"] = np.round(
        rules.insurance_share * people["insured_months"] * per_month.fillna(0.0), 2
    )
    counts = people.groupby("base_id").agg(
        placed=("person_id", "size"),
        qualifying=("qualifies", "sum"),
        insured_months=("insured_months", "sum"),
        insurance_subsidy_yuan=("insurance_subsidy_yuan", "sum"),
    )
    unknown = sorted(set(counts.index) - set(registry["base_id"]))
    listed = pd.concat(
        [
            registry.assign(registered=True),
            pd.DataFrame(
                {
                    "base_id": unknown,
                    "name": pd.Series([None] * len(unknown), dtype="object"),
                    "district": None,
                    "town": None,
                    "lump_sum_paid_on": None,
                    "registered": False,
                }
            ),
        ],
        ignore_index=True,
    )
    listed["base_id"] = listed["base_id"].astype(object)
    counts.index = counts.index.astype(object)
    bases = listed.join(counts, on="base_id")
    for col in ("placed", "qualifying"):
        bases[col] = bases[col].fillna(0).astype(np.int64)
    for col in ("insured_months", "insurance_subsidy_yuan"):
        bases[col] = bases[col].fillna(0.0).astype(np.float64)
    bases["eligible"] = bases["registered"] & (bases["qualifying"] >= rules.min_people)
    paid = bases["lump_sum_paid_on"].map(lambda d: d is not None and pd.Timestamp(d) < at)
    bases["lump_sum_due_yuan"] = np.where(
        bases["eligible"] & ~paid.astype(bool), rules.lump_sum_yuan, 0.0
    )
    bases["total_due_yuan"] = bases["lump_sum_due_yuan"] + bases["insurance_subsidy_yuan"]
    return Eligibility(
        at.date(),
        pd.Timestamp(window_start).date(),
        bases.loc[:, list(BASE_COLUMNS)].reset_index(drop=True),
        people.loc[:, list(PEOPLE_COLUMNS)].reset_index(drop=True),
    )
