"""Pharmacies and placement bases in a simulated district (issue 17, contract-2).

Contract: :func:`add_details` takes the run's event columns (as
:meth:`simulator.observation.EventBuffer.columns` gives them, ``result`` coded into
:data:`simulator.observation.RESULTS`, -1 = none) and returns :class:`Details`: the
same columns with

* every ``controlled_medicine_purchase`` given ``<medicine>@<pharmacy id>`` — the
  person's usual pharmacy (one per person, in their town) with ``usual_share``, else
  any pharmacy of their district; the medicine from ``medicine_mix``;
* a share ``at_base_share`` of ``employment_start`` events given a base id of the
  person's town (value 0 insured months at the start), and the base's insurance
  reports appended as corrections of that start (same person, type, day and time;
  recorded later; ``value`` = months insured so far, ``floor(days / 30.44)`` from
  the start, or from a later month for the bases that insure late) every
  ``report_every_days`` and when the job ends;

plus the result names the new codes index (``result_names``: ``RESULTS`` first, so
old codes keep their meaning) and the base registry (a
:class:`features.placement.PlacementConfig`, written as ``placement.yaml`` beside the
district). Everything is drawn from its own stream (``SeedSequence([seed, 17])``),
after the run: every other column and event is what the run gave for the seed, and
the appended reports come after every other event (their ids follow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract import EVENT_TYPES, SOURCES
from features.placement import PlacementConfig, load_placement_config
from simulator.config import SimConfig
from simulator.observation import RESULTS
from simulator.population import Population

DAYS_PER_MONTH = 30.44
_PURCHASE = EVENT_TYPES.index("controlled_medicine_purchase")
_START = EVENT_TYPES.index("employment_start")
_END = EVENT_TYPES.index("employment_end")


@dataclass(frozen=True)
class Details:
    """The events with details, the names their result codes index, the bases."""

    events: dict[str, np.ndarray]
    result_names: tuple[str, ...]
    placement: PlacementConfig


def _letters(k: int) -> str:
    return chr(ord("A") + k) if k < 26 else f"{chr(ord('A') + k // 26 - 1)}{chr(ord('A') + k % 26)}"


def add_details(
    cfg: SimConfig, pop: Population, ev: dict[str, np.ndarray], n_days: int, seed: int
) -> Details:
    """Pharmacies on purchases, bases on some job starts, the bases' insurance reports."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 17]))
    ph, pl = cfg.pharmacies, cfg.placement
    n_towns = len(pop.town_names)
    town_district = np.asarray(pop.town_district)
    # pharmacies: ids ph-TTKK (town, number), numbered town by town
    per_town = rng.integers(ph.per_town[0], ph.per_town[1] + 1, n_towns)
    ph_town = np.repeat(np.arange(n_towns), per_town)
    ph_first = np.concatenate([[0], np.cumsum(per_town)[:-1]])
    ph_ids = [f"ph-{t + 1:02d}{k - ph_first[t] + 1:02d}" for k, t in enumerate(ph_town.tolist())]
    medicines = tuple(ph.medicine_mix)
    mix = np.array([ph.medicine_mix[m] for m in medicines])
    # bases: ids base-TT-L, one registry entry each
    bases_per = rng.integers(pl.bases_per_town[0], pl.bases_per_town[1] + 1, n_towns)
    base_town = np.repeat(np.arange(n_towns), bases_per)
    base_first = np.concatenate([[0], np.cumsum(bases_per)[:-1]])
    base_ids, bases = [], []
    for k, t in enumerate(base_town.tolist()):
        letter = _letters(k - int(base_first[t]))
        base_ids.append(f"base-{t + 1:02d}-{letter}")
        bases.append(
            {
                "id": base_ids[-1],
                "name": f"基地{letter}（{pop.town_names[t]}）",
                "district": pop.district_names[int(town_district[t])],
                "town": pop.town_names[t],
            }
        )
    purchase_base = len(RESULTS)
    base_base = purchase_base + len(medicines) * len(ph_ids)
    names = (
        *RESULTS,
        *(f"{m}@{p}" for m in medicines for p in ph_ids),
        *base_ids,
    )
    out = {k: v.copy() for k, v in ev.items()}
    out["result"] = out["result"].astype(np.int32)
    person_town = np.asarray(pop.town)
    n_persons = len(person_town)

    # purchases: the usual pharmacy (one per person) or any in the district
    usual = ph_first[person_town] + np.floor(rng.random(n_persons) * per_town[person_town]).astype(
        np.int64
    )
    buy = np.flatnonzero(out["type"] == _PURCHASE)
    who = out["person"][buy]
    draws = rng.random((3, len(buy)))
    district_of_ph = town_district[ph_town]
    anywhere = np.empty(len(buy), np.int64)
    for d in np.unique(town_district[person_town[who]]) if len(buy) else ():
        mine = np.flatnonzero(town_district[person_town[who]] == d)
        options = np.flatnonzero(district_of_ph == d)
        anywhere[mine] = options[np.floor(draws[1][mine] * len(options)).astype(np.int64)]
    pharmacy = np.where(draws[0] < ph.usual_share, usual[who], anywhere)
    medicine = np.minimum(np.searchsorted(np.cumsum(mix), draws[2] * mix.sum()), len(mix) - 1)
    out["result"][buy] = purchase_base + medicine * len(ph_ids) + pharmacy

    # placements at a base of the person's town
    starts = np.flatnonzero(out["type"] == _START)
    draws = rng.random((4, len(starts)))
    at_base = starts[draws[0] < pl.at_base_share]
    u = draws[1][draws[0] < pl.at_base_share]
    t = person_town[out["person"][at_base]]
    base = base_first[t] + np.floor(u * bases_per[t]).astype(np.int64)
    out["result"][at_base] = base_base + base
    out["value"][at_base] = 0.0
    late_u = draws[2][draws[0] < pl.at_base_share]
    late_n = draws[3][draws[0] < pl.at_base_share]
    lo, hi = pl.late_insurance_months
    late = np.where(
        late_u < pl.insured_share, 0, lo + np.floor(late_n * (hi - lo + 1)).astype(np.int64)
    )
    reports = _reports(out, at_base, late, n_days, pl.report_every_days)
    return Details(
        _appended(out, reports),
        names,
        PlacementConfig(
            config_version="placement-1",
            rules=load_placement_config().rules,
            bases=tuple(bases),  # type: ignore[arg-type]
        ),
    )


def _reports(
    ev: dict[str, np.ndarray], at_base: np.ndarray, late: np.ndarray, n_days: int, every: int
) -> dict[str, np.ndarray]:
    """The bases' insurance reports: corrections of each placement's start."""
    person, day = ev["person"].astype(np.int64), ev["day"].astype(np.int64)
    ends = np.flatnonzero(ev["type"] == _END)
    end_key = np.sort(person[ends] * (1 << 32) + day[ends])
    start_key = person[at_base] * (1 << 32) + day[at_base]
    i = np.searchsorted(end_key, start_key, side="left")
    found = i < len(end_key)
    nxt = end_key[np.minimum(i, max(len(end_key) - 1, 0))] if len(end_key) else start_key
    same = found & (nxt >> 32 == person[at_base])
    ended = np.where(same, nxt & ((1 << 32) - 1), n_days)  # n_days: still at work
    rows: list[tuple[int, int]] = []  # (event index of the start, report day)
    for k, (first, end) in enumerate(zip(day[at_base].tolist(), ended.tolist(), strict=True)):
        for r in range(first + every, min(end, n_days), every):
            rows.append((k, r))
        if end < n_days:
            rows.append((k, end))
    if not rows:
        return {k: v[:0] for k, v in ev.items()}
    which = np.array([r[0] for r in rows], np.int64)
    when = np.array([r[1] for r in rows], np.int64)
    e = at_base[which]
    months = np.maximum(0, np.floor((when - day[e]) / DAYS_PER_MONTH) - late[which])
    return {
        "person": ev["person"][e],
        "day": ev["day"][e],
        "type": ev["type"][e],
        "result": ev["result"][e],
        "value": months.astype(ev["value"].dtype),
        "source": np.full(len(e), SOURCES.index("worker"), ev["source"].dtype),
        "tod": ev["tod"][e],
        # recorded on the report day, an hour after the start was (never at the same instant)
        "lag": (ev["lag"][e] + (when - day[e]) * 86_400 + 3_600).astype(ev["lag"].dtype),
    }


def _appended(ev: dict[str, np.ndarray], extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([v, extra[k].astype(v.dtype)]) for k, v in ev.items()}
