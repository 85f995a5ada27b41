"""Simulator configuration: ``default.yaml`` parsed into pydantic models.

Contract: every parameter of the simulator lives in one YAML file, documented
there with its source. Models forbid unknown keys, so a typo is an error rather
than a silent default. :func:`load_config` reads the packaged default or a
given file; nothing is read at import time.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.contract import DRUGS, LIVING

DEFAULT_PATH = Path(__file__).with_name("default.yaml")

Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNeg = Annotated[float, Field(ge=0.0)]

#: What a worker follows up with a home visit within days (observation.follow_up_share).
FOLLOW_UP_TRIGGERS = ("missed_check_in", "not_home", "concern", "medicine", "family_concern")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_shares(shares: dict[str, float], keys: tuple[str, ...] | None, what: str) -> None:
    if keys is not None and set(shares) != set(keys):
        raise ValueError(f"{what} must name exactly {sorted(keys)}, got {sorted(shares)}")
    if abs(sum(shares.values()) - 1.0) > 1e-6:
        raise ValueError(f"{what} shares must add up to 1, got {sum(shares.values()):.4f}")


class Population(_Model):
    prevalent_share: Prob
    prevalent_mean_months_served: Positive
    persons_per_district: Annotated[int, Field(ge=100)]
    towns_per_district: tuple[int, int]
    persons_per_worker: Positive
    male_share: Prob
    drug_mix: dict[str, Prob]
    age_mean: dict[str, Positive]
    age_sd: Positive
    age_range: tuple[int, int]
    first_use_age_mean: Positive
    first_use_age_sd: Positive
    local_share: Prob
    living: dict[str, Prob]
    marital: dict[str, Prob]
    education: dict[str, Prob]
    rehab_share: Prob
    rehab_two_year_share: Prob
    term_years: Annotated[int, Field(ge=1, le=5)]
    prior_detox_extra_mean: dict[str, NonNeg]
    transfer_in_share: Prob
    transfer_in_served_months: tuple[int, int]
    never_report_share: Prob
    never_report_declare_days: Annotated[int, Field(ge=1, le=29)]
    missing_optional_share: Prob

    @model_validator(mode="after")
    def _shares(self) -> Population:
        _check_shares(self.drug_mix, DRUGS, "population.drug_mix")
        _check_shares(self.living, LIVING, "population.living")
        _check_shares(self.marital, None, "population.marital")
        _check_shares(self.education, None, "population.education")
        if set(self.age_mean) != set(DRUGS):
            raise ValueError(f"population.age_mean must name exactly {sorted(DRUGS)}")
        return self


class HazardShape(_Model):
    months_1_3: Prob
    months_4_12: Prob
    year_2: Prob
    year_3: Prob


class Relapse(_Model):
    monthly_hazard: HazardShape
    scale: Positive
    remission_mean_days: Positive
    using_at_entry: Prob
    using_prevalent: Prob
    prior_detox: Positive
    non_local: Positive
    years_of_use_per_year: Positive
    first_use_age_per_year: Positive
    first_use_age_clip_years: NonNeg
    single_or_divorced: Positive
    living_alone: Positive
    drug: dict[str, Positive]
    employed: Positive
    family_support: Positive
    drug_peers: Positive
    counselling: Positive
    craving: Positive


class Chain(_Model):
    """An on/off factor switching at month starts."""

    entry: Prob
    prevalent: Prob
    start: Prob
    stop: Prob


class Covariates(_Model):
    employed: Chain
    family_support: Chain
    drug_peers: Chain
    counselling: Chain
    craving: Chain
    mobility: Chain
    employed_start_local: Positive
    employed_start_over_50: Positive
    family_support_with_family: Positive
    drug_peers_start_non_local: Positive
    drug_peers_start_alone: Positive
    craving_start_first_6_months: Positive
    mobility_start_non_local: Positive


class LossOfContact(_Model):
    monthly_hazard_first_6_months: Prob
    monthly_hazard_after: Prob
    scale: Positive
    using: Positive
    drug_peers: Positive
    mobility: Positive
    age_under_30: Positive
    non_local: Positive
    living_alone: Positive
    employed: Positive
    family_support: Positive
    declare_after_days: Annotated[int, Field(ge=1, le=60)]
    no_abscond_last_days: Annotated[int, Field(ge=0)]
    restore_min_days: Annotated[int, Field(ge=0)]
    restore_mean_extra_days: Positive
    exit_on_restore: Prob

    @model_validator(mode="after")
    def _exact_truth(self) -> LossOfContact:
        # The truth computation relies on: flagged before the term ends, and
        # restored only after any label window that saw the person abscond.
        if self.no_abscond_last_days <= self.declare_after_days:
            raise ValueError("loss_of_contact.no_abscond_last_days must exceed declare_after_days")
        return self


class Exits(_Model):
    custody_monthly: Prob
    custody_using: Positive
    death_yearly: Prob
    death_using: Positive
    transfer_monthly: Prob
    transfer_mobility: Positive
    after_positive: Prob
    after_positive_delay_days: tuple[int, int]


class TestResults(_Model):
    positive: Prob
    refused: Prob
    invalid: Prob

    @model_validator(mode="after")
    def _sum(self) -> TestResults:
        if self.positive + self.refused + self.invalid > 1.0:
            raise ValueError("test result probabilities add up to more than 1")
        return self


class Testing(_Model):
    urine_interval_days: dict[str, Positive]
    hair_interval_days: Positive
    check_in_interval_days: dict[str, Annotated[int, Field(ge=1)]]
    urine_using: TestResults
    urine_abstinent: TestResults
    hair_using: TestResults
    hair_abstinent: TestResults

    @model_validator(mode="after")
    def _keys(self) -> Testing:
        if set(self.urine_interval_days) != {"year_1", "year_2", "year_3"}:
            raise ValueError("testing.urine_interval_days needs year_1, year_2, year_3")
        if set(self.check_in_interval_days) != {"months_1_6", "months_7_12", "year_2", "year_3"}:
            raise ValueError(
                "testing.check_in_interval_days needs months_1_6, months_7_12, year_2, year_3"
            )
        return self


class Observation(_Model):
    check_in_missed: dict[str, Prob]
    home_visit_monthly: NonNeg
    home_visit_max_factor: Positive
    home_visit_not_home: dict[str, Prob]
    home_visit_concern: dict[str, Prob]
    home_visit_moving: Prob
    absconded_home_visit_daily: Prob
    absconded_family_contact_daily: Prob
    counselling_monthly: dict[str, NonNeg]
    counselling_using_factor: NonNeg
    peer_education_monthly: dict[str, NonNeg]
    family_contact_monthly: dict[str, NonNeg]
    medicine_monthly: dict[str, NonNeg]
    medicine_opioid_factor: Positive
    medicine_quantity_mean: dict[str, Positive]
    leave_notice_monthly: dict[str, NonNeg]
    leave_days_mean: Positive
    lab_delay_days: tuple[int, int]
    pharmacy_delay_days: tuple[int, int]
    worker_delay_days: tuple[int, int]
    follow_up_share: dict[str, Prob]
    follow_up_days: tuple[int, int]
    watch_days: Annotated[int, Field(ge=0)]
    watch_visit_factor: Positive
    family_concern_monthly: NonNeg

    @model_validator(mode="after")
    def _follow_up(self) -> Observation:
        if set(self.follow_up_share) != set(FOLLOW_UP_TRIGGERS):
            raise ValueError(
                f"observation.follow_up_share must name exactly {sorted(FOLLOW_UP_TRIGGERS)}"
            )
        lo, hi = self.follow_up_days
        if not 1 <= lo <= hi:
            raise ValueError("observation.follow_up_days must be [lo, hi] with 1 <= lo <= hi")
        return self


class Truth(_Model):
    horizon_days: Annotated[int, Field(ge=1, le=366)]
    paths: Annotated[int, Field(ge=1, le=256)]


Band = tuple[float, float]


class Report(_Model):
    relapse_12m: Band
    relapse_36m: Band
    first_quarter_share: Band
    loss_of_contact_yearly: Band
    execution_rate: Band
    worker_ratio: Band


class _Shift(_Model):
    """A change of the world from ``start`` on (off unless ``enabled``)."""

    enabled: bool = False
    start: date = date(2025, 3, 1)

    @model_validator(mode="after")
    def _month_start(self) -> _Shift:
        # Daily rates are constant within a calendar month (the exact truth relies on it).
        if self.start.day != 1:
            raise ValueError(f"shifts: start {self.start} must be the 1st of a month")
        return self


class NewDrug(_Shift):
    """Entrants from ``start`` increasingly use a new drug (coded ``other``)."""

    drug: str = "other"
    entrant_share: Prob = 0.35
    ramp_months: Annotated[int, Field(ge=1)] = 6
    relapse_factor: Positive = 2.0
    abscond_factor: Positive = 1.5

    @model_validator(mode="after")
    def _known_drug(self) -> NewDrug:
        if self.drug not in DRUGS:
            raise ValueError(f"shifts.new_drug.drug must be one of {sorted(DRUGS)}")
        return self


class ThinTesting(_Shift):
    """Urine tests become rarer from ``start``: the daily chance is multiplied."""

    urine_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5


class WorkerLeaves(_Shift):
    """One town's worker leaves from ``start``: visits, counselling, peer education,
    family contacts and follow-ups of that town's people are multiplied."""

    town_rank: Annotated[int, Field(ge=1)] = 1  # 1 = the town with the most people
    contact_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25


class Ageing(_Shift):
    """Entrants from ``start`` are ``years`` older (years of use grow with age)."""

    years: float = 10.0


class Shifts(_Model):
    """Documented shifts of the world for monitoring studies; all off by default."""

    new_drug: NewDrug = NewDrug()
    testing: ThinTesting = ThinTesting()
    worker_leaves: WorkerLeaves = WorkerLeaves()
    ageing: Ageing = Ageing()

    @property
    def any(self) -> bool:
        return any(s.enabled for s in (self.new_drug, self.testing, self.worker_leaves,
                                       self.ageing))  # fmt: skip


class Pharmacies(_Model):
    """Where controlled medicine is bought and what (``result`` = ``<medicine>@<pharmacy>``)."""

    per_town: tuple[int, int]
    usual_share: Prob
    medicine_mix: dict[str, Prob]

    @model_validator(mode="after")
    def _mix(self) -> Pharmacies:
        from features.contract import CONTROLLED_MEDICINES

        unknown = set(self.medicine_mix) - set(CONTROLLED_MEDICINES)
        if unknown:
            raise ValueError(f"pharmacies.medicine_mix: unknown medicines {sorted(unknown)}")
        _check_shares(self.medicine_mix, None, "pharmacies.medicine_mix")
        if not 1 <= self.per_town[0] <= self.per_town[1]:
            raise ValueError("pharmacies.per_town must be [lo, hi] with 1 <= lo <= hi")
        return self


class Placement(_Model):
    """Placement bases (就业安置基地) and the jobs found through them."""

    bases_per_town: tuple[int, int]
    at_base_share: Prob
    insured_share: Prob
    late_insurance_months: tuple[int, int]
    report_every_days: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _ranges(self) -> Placement:
        if not 1 <= self.bases_per_town[0] <= self.bases_per_town[1]:
            raise ValueError("placement.bases_per_town must be [lo, hi] with 1 <= lo <= hi")
        if not 1 <= self.late_insurance_months[0] <= self.late_insurance_months[1]:
            raise ValueError("placement.late_insurance_months must be [lo, hi], 1 <= lo <= hi")
        return self


class SimConfig(_Model):
    """The whole simulator configuration (``default.yaml``)."""

    config_version: str
    population: Population
    relapse: Relapse
    covariates: Covariates
    loss_of_contact: LossOfContact
    exits: Exits
    testing: Testing
    observation: Observation
    truth: Truth
    report: Report
    pharmacies: Pharmacies
    placement: Placement
    shifts: Shifts = Shifts()

    @model_validator(mode="after")
    def _restore_after_window(self) -> SimConfig:
        # Someone who absconds inside a label window must not be back (and
        # tested) before that window ends; the exact truth relies on it.
        if self.loss_of_contact.restore_min_days < self.truth.horizon_days:
            raise ValueError("loss_of_contact.restore_min_days must be >= truth.horizon_days")
        return self


def load_config(path: Path | None = None) -> SimConfig:
    """Read a simulator config (default: the packaged ``default.yaml``)."""
    source = path or DEFAULT_PATH
    with source.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    return SimConfig.model_validate(raw)
