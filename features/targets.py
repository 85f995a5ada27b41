"""Responsibility targets (禁毒工作目标责任书): each town's KPIs against its targets.

Contract. :func:`load_targets` reads ``targets.yaml`` (strict pydantic): a rule per
KPI in ``defaults`` and, per district or town in ``places``, rules that differ and
signed ``baseline`` values. The file in force is an explicit path, else
``SUNFLOWER_HOME/config/targets.yaml``, else the shipped default.

KPIs (the definitions, docs/duties.md): ``execution_rate``, ``lost_contact``,
``employment_rate`` and ``people_per_worker`` are the daily job's
(``serving.daily.job.town_kpis``, not redefined here); ``abstinent_3y`` is
:func:`abstinent_3y` below. A rule is ``at_least`` x, ``at_most`` x, or ``growth``
g: at least baseline × (1 + g), the baseline being the place's configured one, else
the same KPI a year before (``previous``), else unknown (no verdict).

:func:`against_targets` returns one row per (place, KPI): value, rule, target,
baseline and ``met`` (True / False / None when the value or the target is unknown).
A place's rules: its town entry, over its district entry, over the defaults. Unknown
numbers are NaN; ``met`` is an object column (True, False or None).

:func:`abstinent_3y` counts, per district and town, the people whose agreement
reached its planned end in the 12 months before ``as_of`` after at least 3 years
(start + 3 years − 1 day ≤ planned end, as a 3-year agreement ends), with no
positive or refused urine or hair test in the 3 years up to that end, no
``program_exit`` other than ``completed`` before it, and not lost contact at it (a
``lost_contact`` with no later ``contact_restored``) — what was known before
``as_of`` (the engine's time rule and corrections). 戒断三年未复吸 (条例 Art. 7).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from features.config import home_config_dir
from features.schedule import visible_events

TARGETS_PATH = Path(__file__).with_name("targets.yaml")
Kpi = Literal[
    "execution_rate", "lost_contact", "abstinent_3y", "employment_rate", "people_per_worker"
]
KPIS: tuple[Kpi, ...] = (
    "execution_rate",
    "lost_contact",
    "abstinent_3y",
    "employment_rate",
    "people_per_worker",
)
TARGET_COLUMNS = ("district", "town", "kpi", "value", "rule", "target", "baseline", "met")
#: Results that count as a relapse for abstinence (as the relapse label: refused = positive).
RELAPSE_RESULTS = ("positive", "refused")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """Exactly one of at_least, at_most, growth."""

    at_least: float | None = None
    at_most: float | None = None
    growth: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Rule:
        if sum(v is not None for v in (self.at_least, self.at_most, self.growth)) != 1:
            raise ValueError("a target is exactly one of at_least, at_most, growth")
        return self

    @property
    def kind(self) -> str:
        return (
            "at_least" if self.at_least is not None else "at_most" if self.at_most is not None
            else "growth"
        )  # fmt: skip


class Place(_Strict):
    """A district (``town`` empty) or a town: rules that differ, signed baselines."""

    district: str
    town: str | None = None
    targets: dict[Kpi, Rule] = {}
    baseline: dict[Kpi, float] = {}


class TargetConfig(_Strict):
    """The parsed ``targets.yaml``."""

    config_version: str
    defaults: dict[Kpi, Rule]
    places: tuple[Place, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> TargetConfig:
        keys = [(p.district, p.town) for p in self.places]
        if len(set(keys)) != len(keys):
            raise ValueError("a district or town is listed twice in places")
        return self

    def rules_for(self, district: str, town: str | None) -> dict[Kpi, Rule]:
        """The rules in force for a town (or a district's total when ``town`` is None)."""
        rules = dict(self.defaults)
        for place in self.places:
            if place.district == district and place.town is None:
                rules.update(place.targets)
        for place in self.places:
            if town is not None and (place.district, place.town) == (district, town):
                rules.update(place.targets)
        return rules

    def baseline_for(self, district: str, town: str | None) -> dict[Kpi, float]:
        for place in self.places:
            if (place.district, place.town) == (district, town):
                return dict(place.baseline)
        return {}


def targets_path(path: Path | str | None = None) -> Path:
    """The file in force: explicit, else ``SUNFLOWER_TARGETS``, else the home's, else shipped."""
    if path is not None:
        return Path(path)
    if os.environ.get("SUNFLOWER_TARGETS"):
        return Path(os.environ["SUNFLOWER_TARGETS"])
    home = home_config_dir() / "targets.yaml"
    return home if home.exists() else TARGETS_PATH


def load_targets(path: Path | str | None = None) -> TargetConfig:
    """Parse and check the targets in force (cached per file and mtime)."""
    resolved = targets_path(path).resolve()
    return _load(resolved, resolved.stat().st_mtime_ns)


@cache
def _load(path: Path, _mtime: int) -> TargetConfig:
    with open(path, encoding="utf-8") as fh:
        try:
            return TargetConfig.model_validate(yaml.safe_load(fh))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if np.isnan(number) else number


def against_targets(
    config: TargetConfig,
    kpis: Sequence[Mapping[str, object]],
    previous: Sequence[Mapping[str, object]] = (),
) -> pd.DataFrame:
    """One row per (place, KPI) of ``kpis`` (dicts with district, town and KPI values;
    town None for a district's total), judged against the rules in force."""
    before = {(p.get("district"), p.get("town")): p for p in previous}
    rows = []
    for place in kpis:
        district, town = str(place["district"]), place.get("town")
        town_s = None if town is None else str(town)
        rules = config.rules_for(district, town_s)
        signed = config.baseline_for(district, town_s)
        last = before.get((district, town), {})
        for kpi in KPIS:
            rule = rules.get(kpi)
            if rule is None:
                continue
            value = _number(place.get(kpi))
            baseline = signed.get(kpi, _number(last.get(kpi)))
            if rule.growth is not None:
                target = None if baseline is None else round(baseline * (1 + rule.growth), 4)
            else:
                target = rule.at_least if rule.at_least is not None else rule.at_most
            met: bool | None = None
            if value is not None and target is not None:
                met = value >= target if rule.kind != "at_most" else value <= target
            rows.append((district, town_s, kpi, value, rule.kind, target, baseline, met))
    return pd.DataFrame(rows, columns=list(TARGET_COLUMNS))


def abstinent_3y(
    persons: pd.DataFrame, events: pd.DataFrame, as_of: date | pd.Timestamp
) -> pd.DataFrame:
    """Per district and town: people who ended 3 years without relapse in the last year.

    Columns district, town, abstinent_3y (towns with none are listed with 0).
    """
    at = pd.Timestamp(as_of).normalize()
    start = pd.to_datetime(persons["program_start"])
    end = pd.to_datetime(persons["program_end"])
    ended = (end >= at - pd.Timedelta(days=365)) & (end < at)
    long_enough = start + pd.DateOffset(years=3) - pd.Timedelta(days=1) <= end
    chosen = persons.loc[ended & long_enough, ["person_id"]].assign(
        end=end[ended & long_enough] + pd.Timedelta(days=1)  # the end of the last day
    )
    kinds = ["urine_test", "hair_test", "program_exit", "lost_contact", "contact_restored"]
    mine = events.loc[events["person_id"].isin(chosen["person_id"]) & events["type"].isin(kinds)]
    seen = visible_events(mine, at).merge(chosen, on="person_id")
    three = seen["ts"] >= seen["end"] - pd.DateOffset(years=3)
    before_end = seen["ts"] < seen["end"]
    result = seen["result"].astype("object")
    tested = seen["type"].isin(["urine_test", "hair_test"]) & result.isin(RELAPSE_RESULTS)
    exited = (seen["type"] == "program_exit") & (result != "completed")
    bad = set(seen.loc[before_end & ((tested & three) | exited), "person_id"])
    contact = seen.loc[before_end & seen["type"].isin(["lost_contact", "contact_restored"])]
    latest = contact.sort_values(["person_id", "ts"]).groupby("person_id")["type"].last()
    bad |= set(latest.index[latest == "lost_contact"])
    good = chosen.loc[~chosen["person_id"].isin(bad), "person_id"]
    counts = persons.loc[persons["person_id"].isin(good)].groupby(["district", "town"]).size()
    towns = persons[["district", "town"]].drop_duplicates()
    out = towns.merge(
        counts.rename("abstinent_3y").reset_index(), on=["district", "town"], how="left"
    )
    out["abstinent_3y"] = out["abstinent_3y"].fillna(0).astype(np.int64)
    result_frame: pd.DataFrame = out.sort_values(["district", "town"]).reset_index(drop=True)
    return result_frame
