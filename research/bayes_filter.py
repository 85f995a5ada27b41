"""What the whole observed history says about the hidden state: a Bayes filter (issue 5).

Contract: :func:`filter_posteriors` reads one simulated district (the input
contract's ``persons`` and ``events``, as ``sunflower simulate`` writes them)
and returns, for every person and every first of a month, the posterior
probability of the hidden state *at as_of 00:00 given every event recorded
before as_of* — the time rule of the features — under the simulator's own
observation model:

* ``f_using``: in contact and using (the state that makes a relapse label);
* ``f_absconded``: gone, not yet flagged (the state that makes a loss-of-contact
  label certain).

It is a forward filter over four states (in contact or absconded, using or
not), with the absconded state split by days since absconding so that "not
flagged yet" (the worker flags after 30 days) is used exactly. Emissions and
transitions are the simulator's rates (``simulator.default.yaml``)
with each latent monthly factor replaced by its stationary share, and the
static hazard multipliers taken from the population draw (which persons'
columns determine). It is a diagnostic, not a feature: it knows the
simulator's parameters, which no real deployment would. What it measures is
how much more *the observed history itself* could tell about who uses now and
who has already gone, beyond the catalog's windowed counts — an upper
estimate of what better feature engineering on the same events could add.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import poisson

from simulator.config import SimConfig, load_config
from simulator.engine import month_starts, seeded_population
from simulator.hazard import COVARIATES, Static, month_rates, urine_interval
from simulator.io import person_ids
from simulator.population import DAYS_PER_MONTH, Population

#: Days from absconding to the worker's flag (``loss_of_contact.declare_after_days``).
AGES = 30
#: States: 0 in contact abstinent, 1 in contact using, then (age, using) absconded.
K = 2 + 2 * AGES
#: Column of the 4-state likelihood (C0, C1, A0, A1) each of the K states takes.
SHAPE = np.array([0, 1] + [2, 3] * AGES)
#: P(using) on contact restored by the police after absconding: not modelled by the
#: simulator's observation; a rough prior (use is common among the recovered).
USING_ON_RESTORE = 0.3
#: "No sign yet": far enough back that no follow-up or watch window applies.
NEVER = -10_000
#: Days before as_of whose events may still be unrecorded at as_of (lab lag 1-5 days).
LATE = 7
CHANNELS = (
    "urine_test", "hair_test", "home_visit", "family_contact", "counselling",
    "peer_education", "controlled_medicine_purchase", "leave_notice",
)  # fmt: skip
SIGNS = {("check_in", "missed"), ("home_visit", "not_home"), ("home_visit", "concern")}


def _stationary(cfg: SimConfig) -> dict[str, float]:
    c = cfg.covariates
    chains = {name: getattr(c, name) for name in COVARIATES}
    return {name: ch.start / (ch.start + ch.stop) for name, ch in chains.items()}


@dataclass
class _Month:
    """Per-person daily rates for one calendar month: (n, 4) occurrence chances per channel."""

    occur: dict[str, np.ndarray]
    onset: np.ndarray
    remit: float
    abscond_a: np.ndarray
    abscond_u: np.ndarray
    missed: np.ndarray  # (n, 2): abstinent, using
    visit_notes: dict[str, np.ndarray]  # note -> (n, 2)


def _combine(*p: float) -> float:
    keep = 1.0
    for x in p:
        keep *= 1 - x
    return 1 - keep


def _month(cfg: SimConfig, st: Static, dsr: np.ndarray, pi: dict[str, float]) -> _Month:
    n, o = len(dsr), cfg.observation
    cov = {k: np.full(n, v) for k, v in pi.items()}
    r = month_rates(cfg, st, cov, dsr)
    per_day = 1 / DAYS_PER_MONTH
    urine = 1 / urine_interval(cfg, dsr)
    hair = np.full(n, 1 / cfg.testing.hair_interval_days)
    zero = np.zeros(n)

    def four(c0: ArrayLike, c1: ArrayLike, a0: ArrayLike, a1: ArrayLike) -> np.ndarray:
        return np.stack([np.broadcast_to(x, (n,)) for x in (c0, c1, a0, a1)], axis=1).astype(float)

    fam = (
        pi["family_support"] * o.family_contact_monthly["support"]
        + (1 - pi["family_support"]) * o.family_contact_monthly["other"]
    )
    counsel = (
        pi["counselling"] * o.counselling_monthly["adherent"]
        + (1 - pi["counselling"]) * o.counselling_monthly["other"]
    )
    peer = (
        pi["counselling"] * o.peer_education_monthly["adherent"]
        + (1 - pi["counselling"]) * o.peer_education_monthly["other"]
    )
    med_a = (o.medicine_monthly["base"] + o.medicine_monthly["craving"] * pi["craving"]) * per_day
    opioid = np.where(st.opioid, o.medicine_opioid_factor, 1.0)
    med_u = med_a + o.medicine_monthly["using"] * opioid * per_day
    lv = o.leave_notice_monthly
    leave_a = lv["base"] + lv["mobility"] * pi["mobility"] + lv["drug_peers"] * pi["drug_peers"]
    leave_a *= per_day
    visit, gone_visit = o.home_visit_monthly * per_day, o.absconded_home_visit_daily
    occur = {
        "urine_test": four(urine, urine, zero, zero),
        "hair_test": four(hair, hair, zero, zero),
        "home_visit": four(visit, visit, gone_visit, gone_visit),
        "family_contact": four(
            fam * per_day,
            (fam + o.family_concern_monthly * pi["family_support"]) * per_day,
            o.absconded_family_contact_daily,
            o.absconded_family_contact_daily,
        ),
        "counselling": four(
            counsel * per_day, counsel * o.counselling_using_factor * per_day, 0, 0
        ),
        "peer_education": four(peer * per_day, peer * per_day, 0, 0),
        "controlled_medicine_purchase": four(med_a, med_u, med_a, med_u),
        "leave_notice": four(leave_a, leave_a + lv["using"] * per_day, 0, 0),
    }
    m, nh, cc = o.check_in_missed, o.home_visit_not_home, o.home_visit_concern
    missed_a = _combine(m["base"], m["drug_peers"] * pi["drug_peers"], m["craving"] * pi["craving"],
                        m["mobility"] * pi["mobility"])  # fmt: skip
    nh_a = _combine(nh["base"], nh["mobility"] * pi["mobility"])
    cc_a = _combine(cc["base"], cc["drug_peers"] * pi["drug_peers"])
    nh_u, cc_u = _combine(nh_a, nh["using"]), _combine(cc_a, cc["using"])
    mov = o.home_visit_moving * pi["mobility"]
    notes = {
        "not_home": (nh_a, nh_u),
        "moving": ((1 - nh_a) * mov, (1 - nh_u) * mov),
        "concern": ((1 - nh_a) * (1 - mov) * cc_a, (1 - nh_u) * (1 - mov) * cc_u),
        "met": ((1 - nh_a) * (1 - mov) * (1 - cc_a), (1 - nh_u) * (1 - mov) * (1 - cc_u)),
    }
    return _Month(
        occur=occur,
        onset=np.asarray(r.onset, float),
        remit=float(r.remit),
        abscond_a=np.asarray(r.abscond_a, float),
        abscond_u=np.asarray(r.abscond_u, float),
        missed=np.tile([missed_a, _combine(missed_a, m["using"])], (n, 1)),
        visit_notes={k: np.tile(v, (n, 1)) for k, v in notes.items()},
    )


def _result_likelihood(cfg: SimConfig, kind: str, result: np.ndarray) -> np.ndarray:
    """(rows, 2) P(result | abstinent, using) of test results."""
    t = cfg.testing
    a, u = (t.urine_abstinent, t.urine_using) if kind == "urine_test" else (
        t.hair_abstinent, t.hair_using)  # fmt: skip
    table = {res: (getattr(a, res), getattr(u, res)) for res in ("positive", "refused", "invalid")}
    neg = tuple(1 - sum(v[i] for v in table.values()) for i in (0, 1))
    table["negative"] = (neg[0], neg[1])
    return np.array([table.get(r, (1.0, 1.0)) for r in result], dtype=float).reshape(-1, 2)


class _Filter:
    """The filter's state for every person: posterior over K states, who is tracked, last sign."""

    def __init__(self, cfg: SimConfig, pop: Population, st: Static) -> None:
        self.cfg, self.pop, self.st = cfg, pop, st
        n = len(pop)
        self.p = np.zeros((n, K))
        self.on = np.zeros(n, bool)  # tracked: in the programme, not flagged, not exited
        self.last_sign = np.full(n, NEVER)
        self.month: _Month | None = None
        self.pi = _stationary(cfg)

    def copy(self) -> _Filter:
        other = copy.copy(self)
        other.p, other.on, other.last_sign = self.p.copy(), self.on.copy(), self.last_sign.copy()
        return other

    def new_month(self, d: int) -> None:
        pop = self.pop
        dsr = (np.maximum(d, pop.start_day) - pop.release_day).astype(float)
        self.month = _month(self.cfg, self.st, dsr, self.pi)

    def day(self, d: int, rows: pd.DataFrame) -> None:
        """Condition on day d's recorded events, then step to the start of day d + 1."""
        kinds, who = rows["type"].to_numpy(), rows["i"].to_numpy()
        self._enter_and_flag(d, kinds, who)
        idx = np.flatnonzero(self.on)
        pos = np.full(len(self.on), -1)
        pos[idx] = np.arange(len(idx))
        keep = pos[who] >= 0
        lik = self._likelihood(d, idx, pos, kinds[keep], who[keep], rows[keep])
        q = self.p[idx] * lik[:, SHAPE]
        tot = q.sum(1, keepdims=True)
        q = np.where(tot > 0, q / np.where(tot > 0, tot, 1), self.p[idx])
        results = rows["result"].to_numpy()
        sign = np.array([(k, r) in SIGNS for k, r in zip(kinds, results, strict=True)], bool)
        self.last_sign[who[sign | (kinds == "controlled_medicine_purchase")]] = d
        self.p[idx] = self._transition(d, idx, q)
        self.on[who[np.isin(kinds, ["program_exit", "transfer_out"])]] = False

    def _enter_and_flag(self, d: int, kinds: np.ndarray, who: np.ndarray) -> None:
        pop, p, r = self.pop, self.p, self.cfg.relapse
        ent = (np.maximum(pop.start_day, 0) == d) & ~pop.never_report
        prior = np.where(pop.start_day < 0, r.using_prevalent, r.using_at_entry)[ent]
        p[ent] = 0
        p[ent, 0], p[ent, 1] = 1 - prior, prior
        self.on |= ent
        # the worker flags first thing on day d whoever absconded 30 days ago
        flagged = np.zeros(len(self.on), bool)
        flagged[who[kinds == "lost_contact"]] = True
        p[self.on & ~flagged, K - 2 :] = 0
        self.on &= ~flagged
        restored = who[kinds == "contact_restored"]
        p[restored] = 0
        p[restored, 0], p[restored, 1] = 1 - USING_ON_RESTORE, USING_ON_RESTORE
        self.on[restored] = True

    def _likelihood(
        self,
        d: int,
        idx: np.ndarray,
        pos: np.ndarray,
        kinds: np.ndarray,
        who: np.ndarray,
        rows: pd.DataFrame,
    ) -> np.ndarray:
        """(tracked, 4) P(day d's events | C0, C1, A0, A1)."""
        cfg, month = self.cfg, self.month
        assert month is not None
        lik = np.ones((len(idx), 4))
        since = d - self.last_sign[idx]
        follow = (since >= 2) & (since <= 7)
        watch = since <= cfg.observation.watch_days
        results = rows["result"].to_numpy()
        for ch in CHANNELS:
            occ = month.occur[ch][idx].copy()
            sel = kinds == ch
            hit = np.zeros(len(idx), bool)
            hit[pos[who[sel]]] = True
            if ch == "home_visit":
                occ[:, :2] *= np.where(watch, cfg.observation.watch_visit_factor, 1.0)[:, None]
            factor = np.where(hit[:, None], occ, 1 - occ)
            if ch == "home_visit":
                factor[follow] = 1.0  # a follow-up is due: a visit or none says nothing
            lik *= factor
            j, res = pos[who[sel]], results[sel]
            if ch in ("urine_test", "hair_test"):
                rl = _result_likelihood(cfg, ch, res)
                np.multiply.at(lik, j, np.concatenate([rl, rl], axis=1))
            elif ch == "home_visit":
                for note, c in month.visit_notes.items():
                    m = res == note
                    c = c[idx[j[m]]]
                    gone = np.full(m.sum(), 1.0 if note == "not_home" else 0.0)
                    np.multiply.at(lik, j[m], np.stack([c[:, 0], c[:, 1], gone, gone], 1))
            elif ch == "controlled_medicine_purchase":
                q = np.nan_to_num(rows["value"].to_numpy()[sel], nan=1.0)
                pa = (q <= 1).astype(float)
                pu = poisson.pmf(q - 1, cfg.observation.medicine_quantity_mean["using"] - 1)
                np.multiply.at(lik, j, np.stack([pa, pu, pa, pu], 1))
        ci = kinds == "check_in"
        j, miss = pos[who[ci]], month.missed[idx[pos[who[ci]]]]
        att = (results[ci] == "attended")[:, None]
        gone = np.where(att, 0.0, 1.0).repeat(2, 1)
        np.multiply.at(lik, j, np.concatenate([np.where(att, 1 - miss, miss), gone], 1))
        contact = np.isin(kinds, ["employment_start", "employment_end", "transfer_in"])
        np.multiply.at(lik, pos[who[contact]], np.array([1.0, 1.0, 0.0, 0.0]))
        return lik

    def _transition(self, d: int, idx: np.ndarray, q: np.ndarray) -> np.ndarray:
        """One day of onset, remission and absconding (the engine's order: abscond, then use)."""
        month, loc = self.month, self.cfg.loss_of_contact
        assert month is not None
        on, rem = month.onset[idx], month.remit
        open_ = d <= self.pop.end_day[idx] - loc.no_abscond_last_days
        aa, au = month.abscond_a[idx] * open_, month.abscond_u[idx] * open_
        c0, c1 = q[:, 0], q[:, 1]
        a = q[:, 2:].reshape(-1, AGES, 2)
        new = np.zeros_like(q)
        stay0, stay1 = c0 * (1 - aa), c1 * (1 - au)
        new[:, 0] = stay0 * (1 - on) + stay1 * rem
        new[:, 1] = stay0 * on + stay1 * (1 - rem)
        na = np.zeros_like(a)
        na[:, 0, 0] = c0 * aa * (1 - on) + c1 * au * rem
        na[:, 0, 1] = c0 * aa * on + c1 * au * (1 - rem)
        na[:, 1:, 0] = a[:, :-1, 0] * (1 - on[:, None]) + a[:, :-1, 1] * rem
        na[:, 1:, 1] = a[:, :-1, 0] * on[:, None] + a[:, :-1, 1] * (1 - rem)
        new[:, 2:] = na.reshape(len(idx), -1)
        return new


def filter_posteriors(
    directory: Path,
    persons: int,
    start: date,
    end: date,
    seed: int,
    config: SimConfig | None = None,
) -> pd.DataFrame:
    """person_id, as_of, f_using, f_absconded for every tracked person on each first of a month.

    ``persons``, ``start``, ``end``, ``seed`` and ``config`` are the arguments
    the district was simulated with (to redraw its population's static traits).
    """
    cfg = config or load_config()
    n_days = (end - start).days + 1
    pop = seeded_population(cfg, persons, start, n_days, seed)
    ids = np.asarray(person_ids(persons).to_pylist(), dtype=object)
    ev = pd.read_parquet(directory / "events.parquet")
    origin = pd.Timestamp(start)
    ev["i"] = pd.Index(ids).get_indexer(ev["person_id"])
    ev["d"] = (ev["ts"] - origin).dt.days
    ev["r"] = (ev["recorded_at"] - origin).dt.days
    ev = ev.sort_values(["d", "i"], kind="stable").reset_index(drop=True)
    bounds = np.searchsorted(ev["d"].to_numpy(), np.arange(n_days + 1))
    months = {0, *month_starts(start, 0, n_days)}
    as_ofs = [a for a in month_starts(start, 0, n_days) if a >= LATE]
    flt = _Filter(cfg, pop, Static.of(pop, np.arange(persons)))
    snaps: dict[int, _Filter] = {}
    out = []
    for d in range(n_days):
        if d in months:
            flt.new_month(d)
        if d + LATE in as_ofs:
            snaps[d + LATE] = flt.copy()
        if d in snaps:
            # replay the last days with only what was recorded before as_of 00:00
            late = snaps.pop(d)
            for dd in range(d - LATE, d):
                if dd in months and dd != d - LATE:
                    late.new_month(dd)
                rows = ev.iloc[bounds[dd] : bounds[dd + 1]]
                late.day(dd, rows[rows["r"] < d])
            sel = np.flatnonzero(late.on)
            out.append(
                pd.DataFrame(
                    {
                        "person_id": ids[sel],
                        "as_of": origin + pd.Timedelta(days=d),
                        "f_using": late.p[sel, 1],
                        "f_absconded": late.p[sel, 2:].sum(1),
                    }
                )
            )
        flt.day(d, ev.iloc[bounds[d] : bounds[d + 1]])
    frame = pd.concat(out, ignore_index=True)
    frame["as_of"] = frame["as_of"].astype("datetime64[us]")
    return frame
