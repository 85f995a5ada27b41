"""Shifts of the simulated world from a date, for model-monitoring studies (issue 16).

Contract: every shift is configured under ``shifts`` in the simulator's YAML
(:class:`simulator.config.Shifts`) and is **off by default**; with every shift
off nothing here draws a random number or changes a value, so a default
simulation is byte-identical to one made before shifts existed.

* ``new_drug`` — from ``start``, a share of *entrants* (rising linearly to
  ``entrant_share`` over ``ramp_months``) use a new drug, coded as the
  contract's ``other``; their relapse and absconding hazards are multiplied
  (``relapse_factor``, ``abscond_factor``) on top of the ``other`` drug effect.
* ``testing`` — from ``start``, urine tests become rarer: the daily chance is
  multiplied by ``urine_factor`` (a thinner schedule; hair tests unchanged).
  This changes the hidden world's detection rates, and the truth integrates
  it (each month of a window uses that month's configuration).
* ``worker_leaves`` — from ``start``, one town's worker has left (the town
  ranked ``town_rank`` by people): routine and follow-up home visits,
  counselling, peer education and family contacts of that town's people are
  multiplied by ``contact_factor``. Observation only: the truth is unchanged.
* ``ageing`` — from ``start``, entrants are ``years`` older at entry, with as
  many more years of use (first-use age unchanged); the static hazard effects
  of years of use and of being under 30 follow.

Entry shifts draw from their own random stream (a fifth child of the seed), so
the population, hidden-world, truth and observation streams draw exactly as
without shifts; only the shifted people's traits differ. All shift dates are
month starts, because the simulator's rates are constant within a month.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np

from features.contract import DRUGS
from simulator.config import SimConfig
from simulator.population import DAYS_PER_MONTH, Population


def day_of(start: date, when: date) -> int:
    """Day index of ``when`` counted from the simulation's first day."""
    return (when - start).days


def apply_entry_shifts(
    cfg: SimConfig, pop: Population, start: date, rng: np.random.Generator
) -> None:
    """Change the traits of entrants after the ``new_drug`` and ``ageing`` dates (in place)."""
    sh = cfg.shifts
    if sh.ageing.enabled:
        _age(cfg, pop, day_of(start, sh.ageing.start), sh.ageing.years)
    if sh.new_drug.enabled:
        _new_drug(cfg, pop, start, rng)


def _age(cfg: SimConfig, pop: Population, from_day: int, years: float) -> None:
    who = np.flatnonzero(pop.start_day >= from_day)
    if not len(who):
        return
    lo, hi = cfg.population.age_range
    old_age = pop.age[who].copy()
    new_age = np.clip(old_age + years, lo, hi)
    delta = new_age - old_age
    pop.age[who] = new_age
    pop.birth_year[who] = (pop.birth_year[who] - np.round(delta)).astype(pop.birth_year.dtype)
    pop.years_of_use[who] = pop.years_of_use[who] + delta
    pop.first_use_year[who] = (pop.first_use_year[who] - np.round(delta)).astype(
        pop.first_use_year.dtype
    )
    r, loc = cfg.relapse, cfg.loss_of_contact
    pop.log_onset[who] += math.log(r.years_of_use_per_year) * delta
    was_young, is_young = old_age < 30, new_age < 30
    pop.log_abscond[who] += math.log(loc.age_under_30) * (is_young.astype(float) - was_young)


def _new_drug(cfg: SimConfig, pop: Population, start: date, rng: np.random.Generator) -> None:
    nd = cfg.shifts.new_drug
    from_day = day_of(start, nd.start)
    who = np.flatnonzero(pop.start_day >= from_day)
    u = rng.random(len(pop))[who]  # one draw per person, whatever the period
    months = (pop.start_day[who] - from_day) / DAYS_PER_MONTH
    share = nd.entrant_share * np.minimum(1.0, (np.floor(months) + 1) / nd.ramp_months)
    new = who[u < share]
    code = DRUGS.index(nd.drug)
    effect = np.log([cfg.relapse.drug[d] for d in DRUGS])
    pop.log_onset[new] += effect[code] - effect[pop.drug[new]] + math.log(nd.relapse_factor)
    pop.log_abscond[new] += math.log(nd.abscond_factor)
    pop.drug[new] = code


def month_config(cfg: SimConfig, start: date, day: int) -> SimConfig:
    """The configuration in force in the month starting on ``day`` (the testing shift)."""
    t = cfg.shifts.testing
    if not t.enabled or day < day_of(start, t.start):
        return cfg
    urine = {k: v / t.urine_factor for k, v in cfg.testing.urine_interval_days.items()}
    testing = cfg.testing.model_copy(update={"urine_interval_days": urine})
    return cfg.model_copy(update={"testing": testing})


def shifted_town(cfg: SimConfig, pop: Population) -> int:
    """The index of the town whose worker leaves (rank by people, 1 = most)."""
    counts = np.bincount(pop.town, minlength=len(pop.town_district))
    order = np.lexsort((np.arange(len(counts)), -counts))
    rank = min(cfg.shifts.worker_leaves.town_rank, len(counts)) - 1
    return int(order[rank])


def contact_factor(
    cfg: SimConfig, pop: Population, start: date, day: int, idx: np.ndarray
) -> np.ndarray | None:
    """Per-person multiplier of worker contacts in the month starting on ``day`` (None: 1)."""
    w = cfg.shifts.worker_leaves
    if not w.enabled or day < day_of(start, w.start):
        return None
    town = shifted_town(cfg, pop)
    return np.where(pop.town[idx] == town, w.contact_factor, 1.0)
