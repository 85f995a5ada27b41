"""The hidden dynamics: latent factors and the daily rates they imply.

Contract: the six time-varying latent factors (``COVARIATES``) are on/off and
switch only at the start of a calendar month (:func:`step_covariates`); all
daily rates are therefore constant within a calendar month and are computed
by one function, :func:`month_rates`, from a person's static traits, factors
and days since release. The engine draws events with these rates and the
truth computation integrates them exactly, so both see the same world. The
factors' switching never depends on drug use or contact state, which is what
lets the truth sample factor paths independently of the use process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from features.contract import DRUGS, LIVING
from simulator.config import SimConfig, TestResults
from simulator.population import DAYS_PER_MONTH, DAYS_PER_YEAR, Population

COVARIATES = ("employed", "family_support", "drug_peers", "counselling", "craving", "mobility")
Cov = dict[str, np.ndarray]


@dataclass
class Static:
    """The static traits the rates need, for a selection of rows."""

    log_onset: np.ndarray
    log_abscond: np.ndarray
    opioid: np.ndarray
    over_50: np.ndarray
    non_local: np.ndarray
    alone: np.ndarray
    with_family: np.ndarray

    @classmethod
    def of(cls, pop: Population, idx: np.ndarray) -> Static:
        return cls(
            log_onset=pop.log_onset[idx],
            log_abscond=pop.log_abscond[idx],
            opioid=pop.drug[idx] == DRUGS.index("heroin"),
            over_50=pop.age[idx] >= 50,
            non_local=pop.non_local[idx],
            alone=pop.living[idx] == LIVING.index("alone"),
            with_family=pop.living[idx] == LIVING.index("with_family"),
        )

    def repeat(self, k: int) -> Static:
        """The same rows tiled k times (row-major: all rows, then again)."""
        return Static(**{name: np.tile(v, k) for name, v in vars(self).items()})


def daily(monthly: float | np.ndarray) -> np.ndarray:
    """A monthly probability as a daily one."""
    return np.asarray(-np.expm1(np.log1p(-np.asarray(monthly, dtype=float)) / DAYS_PER_MONTH))


def _start_probs(cfg: SimConfig, st: Static, months: np.ndarray) -> dict[str, np.ndarray]:
    c = cfg.covariates
    one = np.ones(len(months))
    p = {
        "employed": c.employed.start
        * np.where(st.non_local, 1.0, c.employed_start_local)
        * np.where(st.over_50, c.employed_start_over_50, 1.0),
        "family_support": c.family_support.start * one,
        "drug_peers": c.drug_peers.start
        * np.where(st.non_local, c.drug_peers_start_non_local, 1.0)
        * np.where(st.alone, c.drug_peers_start_alone, 1.0),
        "counselling": c.counselling.start * one,
        "craving": c.craving.start * np.where(months < 6, c.craving_start_first_6_months, 1.0),
        "mobility": c.mobility.start * np.where(st.non_local, c.mobility_start_non_local, 1.0),
    }
    return {k: np.minimum(v, 1.0) for k, v in p.items()}


def initial_covariates(
    cfg: SimConfig, st: Static, prevalent: np.ndarray, uniforms: np.ndarray
) -> Cov:
    """Factors on entering (or on day one for people already in the programme)."""
    cov: Cov = {}
    for i, name in enumerate(COVARIATES):
        chain = getattr(cfg.covariates, name)
        p = np.where(prevalent, chain.prevalent, chain.entry)
        if name == "family_support":
            odds = (
                p / (1 - p) * np.where(st.with_family, cfg.covariates.family_support_with_family, 1)
            )
            p = odds / (1 + odds)
        cov[name] = uniforms[i] < p
    return cov


def step_covariates(
    cfg: SimConfig, st: Static, cov: Cov, days_since_release: np.ndarray, uniforms: np.ndarray
) -> Cov:
    """One month-start switch of every factor; uniforms has shape (6, rows)."""
    starts = _start_probs(cfg, st, days_since_release / DAYS_PER_MONTH)
    out: Cov = {}
    for i, name in enumerate(COVARIATES):
        stop = getattr(cfg.covariates, name).stop
        on = cov[name]
        out[name] = np.where(on, uniforms[i] >= stop, uniforms[i] < starts[name])
    return out


@dataclass
class Rates:
    """Daily probabilities for one calendar month; ``_a`` abstinent, ``_u`` using."""

    onset: np.ndarray  # abstinent -> using
    remit: float  # using -> abstinent
    urine: np.ndarray  # a urine test today
    hair: np.ndarray  # a hair test today
    pi_a: np.ndarray  # a positive-or-refused test today
    pi_u: np.ndarray
    custody_a: np.ndarray
    custody_u: np.ndarray
    death_a: float
    death_u: float
    transfer: np.ndarray
    abscond_a: np.ndarray
    abscond_u: np.ndarray

    @property
    def exit_a(self) -> np.ndarray:
        return np.asarray(self.custody_a + self.death_a + self.transfer)

    @property
    def exit_u(self) -> np.ndarray:
        return np.asarray(self.custody_u + self.death_u + self.transfer)


def _stage(days: np.ndarray, bounds: tuple[float, ...], values: tuple[float, ...]) -> np.ndarray:
    return np.asarray(values, dtype=float)[np.searchsorted(np.asarray(bounds), days, "right")]


def urine_interval(cfg: SimConfig, days_since_release: np.ndarray) -> np.ndarray:
    u = cfg.testing.urine_interval_days
    years = (DAYS_PER_YEAR, 2 * DAYS_PER_YEAR)
    return _stage(days_since_release, years, (u["year_1"], u["year_2"], u["year_3"]))


def check_in_interval(cfg: SimConfig, days_since_release: np.ndarray) -> np.ndarray:
    c = cfg.testing.check_in_interval_days
    bounds = (6 * DAYS_PER_MONTH, 12 * DAYS_PER_MONTH, 2 * DAYS_PER_YEAR)
    values = (c["months_1_6"], c["months_7_12"], c["year_2"], c["year_3"])
    return _stage(days_since_release, bounds, values).astype(np.int32)


def _positive_share(results: TestResults) -> float:
    return float(results.positive + results.refused)


def month_rates(cfg: SimConfig, st: Static, cov: Cov, days_since_release: np.ndarray) -> Rates:
    """Daily rates for a calendar month, from the state at its start."""
    r, loc, ex, t = cfg.relapse, cfg.loss_of_contact, cfg.exits, cfg.testing
    months = days_since_release / DAYS_PER_MONTH
    shape = r.monthly_hazard
    base = daily(
        _stage(
            months,
            (3, 12, 24),
            (shape.months_1_3, shape.months_4_12, shape.year_2, shape.year_3),
        )
    )
    log_cov = sum(
        math.log(getattr(r, name)) * cov[name]
        for name in ("employed", "family_support", "drug_peers", "counselling", "craving")
    )
    onset = np.minimum(base * r.scale * np.exp(st.log_onset + log_cov), 0.5)
    urine = 1.0 / urine_interval(cfg, days_since_release)
    hair = np.full(len(months), 1.0 / t.hair_interval_days)
    pos_u = 1 - (1 - urine * _positive_share(t.urine_using)) * (
        1 - hair * _positive_share(t.hair_using)
    )
    pos_a = 1 - (1 - urine * _positive_share(t.urine_abstinent)) * (
        1 - hair * _positive_share(t.hair_abstinent)
    )
    ab_base = daily(
        np.where(months < 6, loc.monthly_hazard_first_6_months, loc.monthly_hazard_after)
    )
    ab_log = st.log_abscond + sum(
        math.log(getattr(loc, name)) * cov[name]
        for name in ("drug_peers", "mobility", "employed", "family_support")
    )
    abscond_a = np.minimum(ab_base * loc.scale * np.exp(ab_log), 0.5)
    custody = daily(ex.custody_monthly) * np.ones(len(months))
    death = float(-np.expm1(np.log1p(-ex.death_yearly) / DAYS_PER_YEAR))
    transfer = daily(ex.transfer_monthly) * np.where(cov["mobility"], ex.transfer_mobility, 1.0)
    return Rates(
        onset=onset,
        remit=1.0 / r.remission_mean_days,
        urine=urine,
        hair=hair,
        pi_a=pos_a,
        pi_u=pos_u,
        custody_a=custody,
        custody_u=np.minimum(custody * ex.custody_using, 0.2),
        death_a=death,
        death_u=min(death * ex.death_using, 0.2),
        transfer=np.minimum(transfer, 0.2),
        abscond_a=abscond_a,
        abscond_u=np.minimum(abscond_a * loc.using, 0.5),
    )
