"""Who is in the district: static person traits, towns, workers and entry dates.

Contract: :func:`draw_population` turns a count, a period and a random
generator into a :class:`Population` of plain numpy arrays (one entry per
person, ordered by programme start) plus the district's towns and workers.
Days are integers counted from the simulation's first day (negative = before
it). Nothing here knows about events; the hidden dynamics live in
:mod:`simulator.hazard` and :mod:`simulator.engine`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from features.contract import DRUGS, LIVING, PROGRAMS
from simulator.config import Population as PopulationConfig
from simulator.config import SimConfig

DAYS_PER_MONTH = 30.44
DAYS_PER_YEAR = 365.25

_NAME_HEADS = "青白东金柳梅南石桃新银竹枫河兰松梧月春安"
_NAME_TAILS = "水杨风川村林桥湖园泽溪岭亭浦塘城山港"


@dataclass
class Population:
    """Static traits of every person (arrays of equal length, sorted by start day)."""

    male: np.ndarray
    birth_year: np.ndarray
    age: np.ndarray  # age at programme start, years
    drug: np.ndarray  # index into contract.DRUGS
    first_use_year: np.ndarray
    years_of_use: np.ndarray
    first_use_age: np.ndarray
    prior_detox: np.ndarray
    non_local: np.ndarray
    living: np.ndarray  # index into contract.LIVING
    marital: np.ndarray  # index into marital_names
    education: np.ndarray  # index into education_names
    program: np.ndarray  # index into contract.PROGRAMS
    start_day: np.ndarray  # programme start (in this district)
    end_day: np.ndarray  # planned end; the last day in the programme
    release_day: np.ndarray  # start of the agreement (earlier for transfers in)
    transfer_in: np.ndarray
    never_report: np.ndarray
    town: np.ndarray
    worker: np.ndarray
    #: optional column name -> mask of persons whose value is left empty
    missing: dict[str, np.ndarray]
    log_onset: np.ndarray  # static log relapse-hazard multiplier, mean exp = 1
    log_abscond: np.ndarray  # static log abscond-hazard multiplier, mean exp = 1
    marital_names: tuple[str, ...]
    education_names: tuple[str, ...]
    district_names: tuple[str, ...]
    town_names: tuple[str, ...]
    town_district: np.ndarray
    worker_town: np.ndarray
    worker_rank: np.ndarray  # 1-based index of a worker within their town

    def __len__(self) -> int:
        return len(self.start_day)

    @property
    def n_workers(self) -> int:
        return len(self.worker_town)


def _choice(
    rng: np.random.Generator, n: int, shares: dict[str, float], names: tuple[str, ...]
) -> np.ndarray:
    p = np.array([shares[k] for k in names], dtype=float)
    return rng.choice(len(names), size=n, p=p / p.sum()).astype(np.int8)


def _place_names(rng: np.random.Generator, n: int, suffixes: tuple[str, ...]) -> list[str]:
    combos = [h + t for h in _NAME_HEADS for t in _NAME_TAILS]
    if n > len(combos) * len(suffixes):
        raise ValueError(f"cannot make {n} distinct place names")
    order = rng.permutation(len(combos) * len(suffixes))[:n]
    return [combos[i % len(combos)] + suffixes[i // len(combos)] for i in order]


def _entry_days(
    rng: np.random.Generator, cfg: PopulationConfig, n: int, n_days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Programme start days and agreement terms (days) for n people."""
    program = (rng.random(n) < cfg.rehab_share).astype(np.int8)  # 1 = community_rehab
    years = np.full(n, float(cfg.term_years))
    two = (program == 1) & (rng.random(n) < cfg.rehab_two_year_share)
    years[two] = 2.0
    term = np.round(years * DAYS_PER_YEAR).astype(np.int32)
    prevalent = rng.random(n) < cfg.prevalent_share
    # Months already served: exponential truncated so that the planned end is
    # at least ~2 months after day one.
    limit = (term - 61).astype(float)
    mean = cfg.prevalent_mean_months_served * DAYS_PER_MONTH
    u = rng.random(n)
    served = -mean * np.log1p(-u * (1.0 - np.exp(-limit / mean)))
    start = np.where(prevalent, -np.ceil(served), rng.integers(0, n_days, n)).astype(np.int32)
    transfer_in = ~prevalent & (rng.random(n) < cfg.transfer_in_share)
    lo, hi = cfg.transfer_in_served_months
    elsewhere = np.round(rng.uniform(lo, hi, n) * DAYS_PER_MONTH).astype(np.int32)
    elsewhere = np.minimum(elsewhere, term - 183)
    release = np.where(transfer_in, start - elsewhere, start).astype(np.int32)
    end = (release + term - 1).astype(np.int32)
    never = ~prevalent & ~transfer_in & (rng.random(n) < cfg.never_report_share)
    return program, start, end, release, transfer_in, never


def _places(
    rng: np.random.Generator, cfg: PopulationConfig, n: int
) -> tuple[
    np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...], np.ndarray, np.ndarray, np.ndarray
]:
    """Districts, towns and workers (~1 worker per persons_per_worker active)."""
    n_districts = max(1, math.ceil(n / cfg.persons_per_district))
    district_of = rng.integers(0, n_districts, n)
    lo, hi = cfg.towns_per_district
    towns_per = rng.integers(lo, hi + 1, n_districts)
    town_district = np.repeat(np.arange(n_districts), towns_per)
    town = np.empty(n, dtype=np.int32)
    first = np.concatenate([[0], np.cumsum(towns_per)[:-1]])
    for d in range(n_districts):
        members = np.flatnonzero(district_of == d)
        weights = rng.dirichlet(np.full(towns_per[d], 4.0))
        town[members] = first[d] + rng.choice(towns_per[d], size=len(members), p=weights)
    per_town = np.bincount(town, minlength=len(town_district))
    workers_per = np.maximum(
        1, np.round(per_town * cfg.prevalent_share / cfg.persons_per_worker)
    ).astype(int)
    worker_town = np.repeat(np.arange(len(town_district)), workers_per)
    worker_first = np.concatenate([[0], np.cumsum(workers_per)[:-1]])
    worker_rank = np.arange(len(worker_town)) - worker_first[worker_town] + 1
    worker = (worker_first[town] + np.floor(rng.random(n) * workers_per[town])).astype(np.int32)
    districts = _place_names(rng, n_districts, ("区",))
    towns = _place_names(rng, len(town_district), ("镇", "街道"))
    return town, worker, tuple(districts), tuple(towns), town_district, worker_town, worker_rank


def _log_normalised(x: np.ndarray) -> np.ndarray:
    return x - math.log(float(np.mean(np.exp(x)))) if len(x) else x


def _static_effects(cfg: SimConfig, p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    r, loc = cfg.relapse, cfg.loss_of_contact
    married = np.array([m in ("single", "divorced") for m in cfg.population.marital])
    drug_effect = np.log([r.drug[d] for d in DRUGS])
    afu = p["first_use_age"] - cfg.population.first_use_age_mean
    clip = r.first_use_age_clip_years
    onset = (
        math.log(r.prior_detox) * (p["prior_detox"] >= 1)
        + math.log(r.non_local) * p["non_local"]
        + math.log(r.years_of_use_per_year) * (p["years_of_use"] - p["years_of_use"].mean())
        + math.log(r.first_use_age_per_year) * np.clip(afu, -clip, clip)
        + math.log(r.single_or_divorced) * married[p["marital"]]
        + math.log(r.living_alone) * (p["living"] == LIVING.index("alone"))
        + drug_effect[p["drug"]]
    )
    abscond = (
        math.log(loc.age_under_30) * (p["age"] < 30)
        + math.log(loc.non_local) * p["non_local"]
        + math.log(loc.living_alone) * (p["living"] == LIVING.index("alone"))
    )
    return _log_normalised(onset), _log_normalised(abscond)


def draw_population(
    cfg: SimConfig, n: int, start_ordinal: int, n_days: int, rng: np.random.Generator
) -> Population:
    """Draw n people entering a period of n_days starting on a date's ordinal."""
    pc = cfg.population
    program, start, end, release, transfer_in, never = _entry_days(rng, pc, n, n_days)
    order = np.lexsort((rng.random(n), start))
    program, start, end, release = program[order], start[order], end[order], release[order]
    transfer_in, never = transfer_in[order], never[order]
    drug = _choice(rng, n, pc.drug_mix, DRUGS)
    age_mean = np.array([pc.age_mean[d] for d in DRUGS])[drug]
    lo, hi = pc.age_range
    age = np.clip(rng.normal(age_mean, pc.age_sd), lo, hi)
    days = np.datetime64("0001-01-01") + (start_ordinal - 1 + start.astype(np.int64)).astype(
        "timedelta64[D]"
    )
    year_of_start = days.astype("datetime64[Y]").astype(np.int64) + 1970
    birth_year = (year_of_start - np.floor(age)).astype(np.int32)
    first_use_age = np.clip(rng.normal(pc.first_use_age_mean, pc.first_use_age_sd, n), 12, age - 1)
    first_use_year = (birth_year + np.round(first_use_age)).astype(np.int32)
    prior_mean = np.array([pc.prior_detox_extra_mean[p] for p in PROGRAMS])[program]
    prior_detox = (program == PROGRAMS.index("community_rehab")) + rng.poisson(prior_mean)
    traits = {
        "drug": drug,
        "age": age,
        "first_use_age": first_use_age,
        "years_of_use": age - first_use_age,
        "prior_detox": prior_detox.astype(np.int16),
        "non_local": rng.random(n) >= pc.local_share,
        "living": _choice(rng, n, pc.living, LIVING),
        "marital": _choice(rng, n, pc.marital, tuple(pc.marital)),
        "education": _choice(rng, n, pc.education, tuple(pc.education)),
    }
    log_onset, log_abscond = _static_effects(cfg, traits)
    town, worker, districts, towns, town_district, worker_town, worker_rank = _places(rng, pc, n)
    optional: tuple[str, ...] = ("first_use_year", "prior_compulsory_detox", "household")
    optional += ("living", "marital", "education")
    missing = {name: rng.random(n) < pc.missing_optional_share for name in optional}
    return Population(
        male=rng.random(n) < pc.male_share,
        birth_year=birth_year,
        first_use_year=first_use_year,
        program=program,
        start_day=start,
        end_day=end,
        release_day=release,
        transfer_in=transfer_in,
        never_report=never,
        town=town,
        worker=worker,
        missing=missing,
        log_onset=log_onset,
        log_abscond=log_abscond,
        marital_names=tuple(pc.marital),
        education_names=tuple(pc.education),
        district_names=districts,
        town_names=towns,
        town_district=town_district,
        worker_town=worker_town,
        worker_rank=worker_rank,
        **traits,
    )
