"""The daily loop: hidden states move, events are drawn, truth is snapshotted.

Contract: :func:`run` steps day by day over the period with vector operations
across people (no loop per person). Work is organised in *frames*, one per
calendar month: at a month start the latent factors switch
(:func:`simulator.hazard.step_covariates`), the month's rates are
computed once, and the truth for everyone in the cohort is snapshotted before
anything happens that day. Each day, in order: entries; the truth snapshot (on
the 1st); scheduled changes (lost-contact flags, restored contact, exits after
a positive test); tests; exits; absconding; the planned end; routine traces;
then the use state moves (abstinent <-> using). :mod:`simulator.truth`
integrates exactly this order. Everything the event buffer draws (routine
traces, the worker's reactions, times of day, recording delays) comes from
a separate observation stream, so the hidden world (states, tests, exits,
flags) of a seed is the same however densely it is observed.
:func:`seeded_run` spawns those streams from one seed the same way for every
caller (``simulate``, the hidden-state replay, diagnostics).

Person status codes: 0 not yet entered, 1 in contact, 2 absconded (not yet
flagged), 3 lost (flagged), 4 awaiting exit after a positive test, 5 exited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from simulator.config import SimConfig
from simulator.hazard import (
    COVARIATES,
    Cov,
    Rates,
    Static,
    check_in_interval,
    initial_covariates,
    month_rates,
    step_covariates,
)
from simulator.observation import (
    EVENING,
    NO_FOLLOW_UP,
    RESULT,
    EventBuffer,
    Today,
    emit_traces,
    trace_rates,
)
from simulator.population import Population, draw_population
from simulator.shifts import apply_entry_shifts, contact_factor, month_config
from simulator.truth import CohortState, label_probabilities

WAITING, IN_CONTACT, ABSCONDED, LOST, AWAITING_EXIT, EXITED = range(6)


@dataclass
class TruthRows:
    """Snapshotted truth: one entry per (person in cohort, month start)."""

    person: list[np.ndarray] = field(default_factory=list)
    day: list[np.ndarray] = field(default_factory=list)
    p_relapse: list[np.ndarray] = field(default_factory=list)
    p_loss: list[np.ndarray] = field(default_factory=list)
    se_relapse: list[np.ndarray] = field(default_factory=list)
    se_loss: list[np.ndarray] = field(default_factory=list)
    #: the hidden state behind p, per row (``using``, ``absconded`` and the
    #: latent factors): never written, kept for diagnostics (:mod:`.hidden`)
    hidden: dict[str, list[np.ndarray]] = field(default_factory=dict)


def month_starts(start: date, first: int, last: int) -> list[int]:
    """Day indices (from ``start``) of every 1st of a month in [first, last)."""
    d = start + timedelta(days=first)
    d = d if d.day == 1 else (d.replace(day=1) + timedelta(days=32)).replace(day=1)
    out = []
    while (d - start).days < last:
        out.append((d - start).days)
        d = (d + timedelta(days=32)).replace(day=1)
    return out


class _Sim:
    def __init__(
        self,
        cfg: SimConfig,
        pop: Population,
        start: date,
        n_days: int,
        rng: np.random.Generator,
        obs_rng: np.random.Generator,
    ) -> None:
        self.cfg, self.pop, self.start, self.n_days, self.rng = cfg, pop, start, n_days, rng
        n = len(pop)
        self.buf = EventBuffer(obs_rng)
        self.follow_up = np.full(n, NO_FOLLOW_UP, dtype=np.int32)
        self.watch_until = np.full(n, -1, dtype=np.int32)
        self.status = np.zeros(n, dtype=np.int8)
        self.using = np.zeros(n, dtype=bool)
        self.flag_day = np.zeros(n, dtype=np.int32)
        self.restore_day = np.zeros(n, dtype=np.int32)
        self.exit_day = np.zeros(n, dtype=np.int32)
        self.cov = {name: np.zeros(n, dtype=bool) for name in COVARIATES}
        self.entry_day = np.maximum(pop.start_day, 0)

    # -- one calendar month -------------------------------------------------
    def frame(
        self,
        b: int,
        b2: int,
        truth: TruthRows | None,
        truth_rng: np.random.Generator | None,
        as_of: set[int],
    ) -> None:
        cfg, pop, rng = self.cfg, self.pop, self.rng
        idx = np.flatnonzero((self.status != EXITED) & (pop.start_day < b2))
        st_all = Static.of(pop, idx)
        status, using = self.status[idx], self.using[idx]
        flag, restore, exit_day = self.flag_day[idx], self.restore_day[idx], self.exit_day[idx]
        follow_up, watch_until = self.follow_up[idx], self.watch_until[idx]
        entry, end, release = self.entry_day[idx], pop.end_day[idx], pop.release_day[idx]
        dsr = np.maximum(b, pop.start_day[idx]) - release
        cov = {name: self.cov[name][idx] for name in COVARIATES}
        new = status == WAITING
        draws = rng.random((len(COVARIATES) + 1, len(idx)))
        if (~new).any():
            stepped = step_covariates(cfg, st_all, cov, dsr, draws[:-1])
            cov = {k: np.where(new, cov[k], stepped[k]) for k in COVARIATES}
        if new.any():
            prevalent = pop.start_day[idx] < 0
            fresh = initial_covariates(cfg, st_all, prevalent, draws[:-1])
            cov = {k: np.where(new, fresh[k], cov[k]) for k in COVARIATES}
            p_use = np.where(prevalent, cfg.relapse.using_prevalent, cfg.relapse.using_at_entry)
            using = np.where(new, draws[-1] < p_use, using)
        rates = month_rates(month_config(cfg, self.start, b), st_all, cov, dsr)
        load = np.bincount(pop.worker[idx], minlength=pop.n_workers)[pop.worker[idx]]
        traces = trace_rates(cfg, st_all, cov, cfg.population.persons_per_worker / load)
        contacts = contact_factor(cfg, pop, self.start, b, idx)
        if contacts is not None:
            for name in ("visit", "visit_watched", "counselling_a", "counselling_u", "peer",
                         "family"):  # fmt: skip
                setattr(traces, name, getattr(traces, name) * contacts)
        interval = check_in_interval(cfg, dsr)
        loc, ex = cfg.loss_of_contact, cfg.exits
        lab = cfg.observation.lab_delay_days
        worker_delay = cfg.observation.worker_delay_days
        buf = self.buf
        pid = idx
        for d in range(b, b2):
            ent = (status == WAITING) & (entry == d)
            if ent.any():
                never = ent & pop.never_report[idx]
                status[ent] = np.where(never[ent], ABSCONDED, IN_CONTACT)
                flag[never] = d + cfg.population.never_report_declare_days
                buf.add(pid[ent & pop.transfer_in[idx]], d, "transfer_in", "other_district")
                job = ent & ~never & cov["employed"]
                buf.add(pid[job], d, "employment_start", "worker", delay_days=worker_delay)
            if truth is not None and d in as_of:
                assert truth_rng is not None, "run() passes a truth stream whenever it keeps truth"
                self._snapshot(d, idx, status, using, cov, st_all, dsr, end, truth, truth_rng)
            if d == b and b in as_of:
                self._employment_events(d, idx, status, cov)
            flagged = (status == ABSCONDED) & (flag == d)
            buf.add(pid[flagged], d, "lost_contact", "worker")
            status[flagged] = LOST
            extra = np.ceil(rng.exponential(loc.restore_mean_extra_days, flagged.sum()))
            restore[flagged] = d + loc.restore_min_days + extra.astype(np.int32)
            back = (status == LOST) & (restore == d)
            if back.any():
                buf.add(pid[back], d, "contact_restored", "police")
                leave = back & ((rng.random(len(idx)) < loc.exit_on_restore) | (d >= end))
                self._exit(pid[leave], d, "violation", "police")
                status[leave] = EXITED
                status[back & ~leave] = IN_CONTACT
            due = (status == AWAITING_EXIT) & (exit_day == d)
            self._exit(pid[due], d, "violation", "police")
            status[due] = EXITED
            contact, absconded = status == IN_CONTACT, status == ABSCONDED
            r = rng.random((7, len(idx)), dtype=np.float32)
            positive = self._tests(d, pid, contact, using, rates, r)
            pend = positive & (r[4] < ex.after_positive)
            lo, hi = ex.after_positive_delay_days
            exit_day[pend] = np.minimum(
                d + lab[1] + 1 + rng.integers(lo, hi + 1, pend.sum()), end[pend]
            )
            status[pend] = AWAITING_EXIT
            now = pend & (exit_day == d)
            self._exit(pid[now], d, "violation", "police")
            status[now] = EXITED
            rest = contact & ~pend
            custody = np.where(using, rates.custody_u, rates.custody_a)
            death = np.where(using, rates.death_u, rates.death_a)
            gone = rest & (r[5] < custody + death + rates.transfer)
            kind = np.where(r[5] < custody, 0, np.where(r[5] < custody + death, 1, 2))
            self._exit(pid[gone & (kind == 0)], d, "custody", "police")
            self._exit(pid[gone & (kind == 1)], d, "death", "police")
            moved = pid[gone & (kind == 2)]
            buf.add(moved, d, "transfer_out", "worker", clock=(EVENING[0] - 3600, EVENING[0]))
            self._exit(moved, d, "transferred", "worker")
            status[gone] = EXITED
            rest &= ~gone & (d <= end - loc.no_abscond_last_days)
            away = rest & (r[6] < np.where(using, rates.abscond_u, rates.abscond_a))
            status[away] = ABSCONDED
            flag[away] = d + loc.declare_after_days
            done = (status == IN_CONTACT) & (end == d)
            self._exit(pid[done], d, "completed", "worker")
            status[done] = EXITED
            today = Today(
                day=d,
                person=pid,
                using=using,
                in_contact=contact,
                absconded=absconded,
                check_in_due=(((d - release) % interval) == 0) | (ent & pop.transfer_in[idx]),
                mobility=cov["mobility"],
                follow_up=follow_up,
                watch_until=watch_until,
                follow_up_factor=contacts,
            )
            emit_traces(buf, cfg, traces, today)
            moving = (status >= IN_CONTACT) & (status < EXITED)
            step = rng.random(len(idx))
            using = np.where(
                moving, np.where(using, step >= rates.remit, step < rates.onset), using
            )
        self.status[idx], self.using[idx] = status, using
        self.flag_day[idx], self.restore_day[idx], self.exit_day[idx] = flag, restore, exit_day
        self.follow_up[idx], self.watch_until[idx] = follow_up, watch_until
        for name in COVARIATES:
            self.cov[name][idx] = cov[name]

    def _tests(
        self,
        d: int,
        pid: np.ndarray,
        contact: np.ndarray,
        using: np.ndarray,
        rates: Rates,
        r: np.ndarray,
    ) -> np.ndarray:
        """Urine and hair tests today; returns who tested positive or refused."""
        t, lab = self.cfg.testing, self.cfg.observation.lab_delay_days
        positive = np.zeros(len(pid), dtype=bool)
        for kind, row, rate, res_u, res_a in (
            ("urine_test", 0, rates.urine, t.urine_using, t.urine_abstinent),
            ("hair_test", 1, rates.hair, t.hair_using, t.hair_abstinent),
        ):
            tested = np.flatnonzero(contact & (r[row] < rate))
            if not len(tested):
                continue
            x, use = r[row + 2, tested], using[tested]
            pos = np.where(use, res_u.positive, res_a.positive)
            ref = pos + np.where(use, res_u.refused, res_a.refused)
            inv = ref + np.where(use, res_u.invalid, res_a.invalid)
            result = np.select(
                [x < pos, x < ref, x < inv],
                [RESULT["positive"], RESULT["refused"], RESULT["invalid"]],
                RESULT["negative"],
            )
            self.buf.add(pid[tested], d, kind, "lab", result, delay_days=lab)
            positive[tested[x < ref]] = True
        return positive

    def _exit(self, person: np.ndarray, d: int, result: str, source: str) -> None:
        delay = self.cfg.observation.worker_delay_days
        self.buf.add(person, d, "program_exit", source, result, clock=EVENING, delay_days=delay)

    def _employment_events(self, d: int, idx: np.ndarray, status: np.ndarray, cov: Cov) -> None:
        """Employment spells that switched at this month start, as the worker records them."""
        was = self.cov["employed"][idx]
        seen = (status == IN_CONTACT) & (self.entry_day[idx] < d)
        delay = self.cfg.observation.worker_delay_days
        self.buf.add(idx[seen & cov["employed"] & ~was], d, "employment_start", "worker",
                     delay_days=delay)  # fmt: skip
        self.buf.add(idx[seen & ~cov["employed"] & was], d, "employment_end", "worker",
                     delay_days=delay)  # fmt: skip

    def _snapshot(
        self,
        d: int,
        idx: np.ndarray,
        status: np.ndarray,
        using: np.ndarray,
        cov: Cov,
        st_all: Static,
        dsr: np.ndarray,
        end: np.ndarray,
        truth: TruthRows,
        truth_rng: np.random.Generator,
    ) -> None:
        cohort = (status == IN_CONTACT) | (status == ABSCONDED) | (status == AWAITING_EXIT)
        sel = np.flatnonzero(status == IN_CONTACT)
        horizon = self.cfg.truth.horizon_days
        offsets = tuple(m - d for m in month_starts(self.start, d + 1, d + horizon))
        state = CohortState(
            static=Static(**{k: v[sel] for k, v in vars(st_all).items()}),
            cov={k: v[sel] for k, v in cov.items()},
            using=using[sel],
            days_since_release=dsr[sel],
            days_to_end=end[sel] - d,
            month_starts=offsets,
            configs=tuple(month_config(self.cfg, self.start, d + o) for o in (0, *offsets)),
        )
        p_rel, p_loc, se_rel, se_loc = label_probabilities(self.cfg, state, truth_rng)
        n = len(idx)
        full = {k: np.zeros(n) for k in ("pr", "pl", "sr", "sl")}
        full["pr"][sel], full["pl"][sel], full["sr"][sel], full["sl"][sel] = (
            p_rel,
            p_loc,
            se_rel,
            se_loc,
        )
        full["pl"][status == ABSCONDED] = 1.0
        truth.person.append(idx[cohort])
        truth.day.append(np.full(int(cohort.sum()), d, dtype=np.int32))
        truth.p_relapse.append(full["pr"][cohort])
        truth.p_loss.append(full["pl"][cohort])
        truth.se_relapse.append(full["sr"][cohort])
        truth.se_loss.append(full["sl"][cohort])
        hidden = {"using": using, "absconded": status == ABSCONDED, **cov}
        for name, values in hidden.items():
            truth.hidden.setdefault(name, []).append(values[cohort])


def run(
    cfg: SimConfig,
    pop: Population,
    start: date,
    n_days: int,
    rng: np.random.Generator,
    obs_rng: np.random.Generator,
    truth_rng: np.random.Generator | None,
    progress: Callable[[int, int], None] | None = None,
    total_steps: int | None = None,
) -> tuple[dict[str, np.ndarray], TruthRows | None]:
    """Simulate the period; returns event columns and (if asked) truth rows.

    ``rng`` drives the hidden world, ``obs_rng`` what is recorded of it.
    """
    sim = _Sim(cfg, pop, start, n_days, rng, obs_rng)
    firsts = month_starts(start, 0, n_days)
    bounds = sorted({0, *firsts, n_days})
    truth = TruthRows() if truth_rng is not None else None
    as_of = set(firsts)
    for b, b2 in zip(bounds[:-1], bounds[1:], strict=True):
        sim.frame(b, b2, truth, truth_rng, as_of)
        if progress is not None:
            progress(b2, total_steps or n_days)
    return sim.buf.columns(), truth


def seeded_population(
    cfg: SimConfig, persons: int, start: date, n_days: int, seed: int
) -> Population:
    """The population a seed draws (its first stream), without running the period."""
    pop_seq = np.random.SeedSequence(seed).spawn(4)[0]
    pop = draw_population(cfg, persons, start.toordinal(), n_days, np.random.default_rng(pop_seq))
    _shift_population(cfg, pop, start, seed)
    return pop


def _shift_population(cfg: SimConfig, pop: Population, start: date, seed: int) -> None:
    """Entry shifts (:mod:`simulator.shifts`) from a fifth stream; nothing when all are off."""
    if cfg.shifts.any:
        shift_seq = np.random.SeedSequence(seed).spawn(5)[4]
        apply_entry_shifts(cfg, pop, start, np.random.default_rng(shift_seq))


def seeded_run(
    cfg: SimConfig,
    persons: int,
    start: date,
    n_days: int,
    seed: int,
    *,
    truth: bool = True,
    progress: Callable[[int, int], None] | None = None,
    total_steps: int | None = None,
) -> tuple[Population, dict[str, np.ndarray], TruthRows | None]:
    """Population, event columns and truth rows of a seed.

    Four streams are spawned from the seed: population, hidden world, truth,
    observation (spawned children are indexed, so the first three do not
    depend on the fourth, nor on whether the truth is computed); a fifth
    drives the entry shifts (:mod:`simulator.shifts`) when one is enabled.
    """
    pop_seq, main_seq, truth_seq, obs_seq = np.random.SeedSequence(seed).spawn(4)
    pop = draw_population(cfg, persons, start.toordinal(), n_days, np.random.default_rng(pop_seq))
    _shift_population(cfg, pop, start, seed)
    events, rows = run(
        cfg,
        pop,
        start,
        n_days,
        np.random.default_rng(main_seq),
        np.random.default_rng(obs_seq),
        np.random.default_rng(truth_seq) if truth else None,
        progress,
        total_steps,
    )
    return pop, events, rows
