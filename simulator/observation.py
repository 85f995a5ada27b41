"""What the system sees: the event buffer and the traces hidden states leave.

Contract: :class:`EventBuffer` collects events as compact numpy columns
(person index, day, type code, result code, value, time of day, recording
delay, source code) in the order they are added; :mod:`simulator.io`
turns them into the contract's columns. :func:`trace_rates` gives, for a
calendar month, the daily chance of each routine observation (check-in
missed, home visit and its note, counselling, peer education, family contact,
controlled-medicine purchase, leave notice) for a person abstinent or using;
:func:`emit_traces` draws one day of them, including the worker's reaction
to warning signs (a follow-up home visit within days, more frequent routine
visits while the person is on the watch list), kept per person in
:class:`Today`'s ``follow_up`` and ``watch_until`` arrays. None of these
observations feeds back into the hidden state: they are honest, noisy traces
of it, drawn from their own random stream (so the hidden world of a seed does
not depend on how densely it is observed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract import EVENT_RESULTS, EVENT_TYPES, HOME_VISIT_RESULTS, SOURCES
from simulator.config import FOLLOW_UP_TRIGGERS, Observation, SimConfig
from simulator.hazard import Cov, Static
from simulator.population import DAYS_PER_MONTH

#: Result strings used by the simulator: the contract's enumerations first,
#: then the home-visit notes (known to the contract, not enforced).
RESULTS: tuple[str, ...] = (
    tuple(dict.fromkeys([r for rs in EVENT_RESULTS.values() for r in rs])) + HOME_VISIT_RESULTS
)
TYPE = {name: i for i, name in enumerate(EVENT_TYPES)}
RESULT = {name: i for i, name in enumerate(RESULTS)}
SOURCE = {name: i for i, name in enumerate(SOURCES)}

HOUR = 3600
#: ``Today.follow_up`` value for "no follow-up visit planned".
NO_FOLLOW_UP = np.iinfo(np.int32).max
DAYTIME = (8 * HOUR + 1800, 17 * HOUR + 1800)
EVENING = (18 * HOUR, 23 * HOUR)


class EventBuffer:
    """Append-only event columns; times are (day, seconds into the day)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._persons: list[np.ndarray] = []
        #: per call: (rows, day, type, result code or -2 for per-row, source,
        #: clock from, clock to, delay from, delay to)
        self._heads: list[tuple[int, ...]] = []
        self._results: dict[int, np.ndarray] = {}
        self._values: dict[int, np.ndarray] = {}
        self.count = 0

    def add(
        self,
        person: np.ndarray,
        day: int,
        etype: str,
        source: str,
        result: np.ndarray | str | None = None,
        value: np.ndarray | None = None,
        clock: tuple[int, int] = DAYTIME,
        delay_days: tuple[int, int] = (0, 0),
    ) -> None:
        n = len(person)
        if n == 0:
            return
        part = len(self._heads)
        if result is None:
            code = -1
        elif isinstance(result, str):
            code = RESULT[result]
        else:
            code = -2
            self._results[part] = result.astype(np.int8)
        if value is not None:
            self._values[part] = value.astype(np.float32)
        self._persons.append(person.astype(np.int32, copy=False))
        self._heads.append(
            (n, day, TYPE[etype], code, SOURCE[source], *clock, delay_days[0], delay_days[1] + 1)
        )
        self.count += n

    def columns(self, chunk: int = 4_000_000) -> dict[str, np.ndarray]:
        """All events so far as columns (the buffer is emptied).

        Times of day and recording delays are drawn here, in one vectorised
        pass per chunk: ``tod`` seconds into the day, ``lag`` seconds from
        ``ts`` to ``recorded_at``.
        """
        heads = np.array(self._heads, dtype=np.int64).reshape(-1, 9)
        rows = heads[:, 0]
        rep = {i: np.repeat(heads[:, i], rows) for i in range(1, 9)}
        out = {
            "person": np.concatenate(self._persons) if self._persons else np.zeros(0, np.int32),
            "day": rep[1].astype(np.int32),
            "type": rep[2].astype(np.int8),
            "result": rep[3].astype(np.int8),
            "value": np.full(len(rep[1]), np.nan, dtype=np.float32),
            "source": rep[4].astype(np.int8),
        }
        starts = np.concatenate([[0], np.cumsum(rows)])
        for part, codes in self._results.items():
            out["result"][starts[part] : starts[part + 1]] = codes
        for part, values in self._values.items():
            out["value"][starts[part] : starts[part + 1]] = values
        total = len(out["day"])
        out["tod"] = np.empty(total, dtype=np.int32)
        out["lag"] = np.empty(total, dtype=np.int32)
        for lo in range(0, total, chunk):
            hi = min(total, lo + chunk)
            u = self.rng.random((3, hi - lo))
            span = rep[6][lo:hi] - rep[5][lo:hi]
            out["tod"][lo:hi] = rep[5][lo:hi] + (u[0] * span).astype(np.int64)
            days = rep[7][lo:hi] + (u[1] * (rep[8][lo:hi] - rep[7][lo:hi])).astype(np.int64)
            out["lag"][lo:hi] = days * 86400 + (u[2] * 2 * HOUR).astype(np.int64)
        self._persons, self._heads, self._results, self._values = [], [], {}, {}
        return out


def _per_day(monthly_count: float | np.ndarray) -> np.ndarray:
    """A mean count per month as a daily chance."""
    return np.minimum(np.asarray(monthly_count, dtype=float) / DAYS_PER_MONTH, 0.9)


def _combine(*probs: float | np.ndarray) -> np.ndarray:
    """P(at least one of independent causes)."""
    keep = np.ones(1)
    for p in probs:
        keep = keep * (1 - np.asarray(p))
    return 1 - keep


@dataclass
class TraceRates:
    """Daily chances of routine observations; ``_a`` abstinent, ``_u`` using."""

    missed_a: np.ndarray
    missed_u: np.ndarray
    visit: np.ndarray
    visit_watched: np.ndarray
    not_home_a: np.ndarray
    not_home_u: np.ndarray
    concern_a: np.ndarray
    concern_u: np.ndarray
    moving: np.ndarray
    counselling_a: np.ndarray
    counselling_u: np.ndarray
    peer: np.ndarray
    family: np.ndarray
    medicine_a: np.ndarray
    medicine_u: np.ndarray
    leave_a: np.ndarray
    leave_u: np.ndarray
    family_concern_u: np.ndarray


def trace_rates(cfg: SimConfig, st: Static, cov: Cov, load_factor: np.ndarray) -> TraceRates:
    """Daily observation chances for a month, from the state at its start."""
    o = cfg.observation
    peers, craving, mobility = cov["drug_peers"], cov["craving"], cov["mobility"]
    miss = o.check_in_missed
    missed_a = _combine(
        miss["base"], miss["drug_peers"] * peers, miss["craving"] * craving,
        miss["mobility"] * mobility,
    )  # fmt: skip
    nh, cc = o.home_visit_not_home, o.home_visit_concern
    not_home_a = _combine(nh["base"], nh["mobility"] * mobility)
    concern_a = _combine(cc["base"], cc["drug_peers"] * peers)
    counsel = np.where(
        cov["counselling"], o.counselling_monthly["adherent"], o.counselling_monthly["other"]
    )
    peer = np.where(
        cov["counselling"], o.peer_education_monthly["adherent"], o.peer_education_monthly["other"]
    )
    family = np.where(
        cov["family_support"],
        o.family_contact_monthly["support"],
        o.family_contact_monthly["other"],
    )
    med = o.medicine_monthly
    med_a = med["base"] + med["craving"] * craving
    opioid = np.where(st.opioid, o.medicine_opioid_factor, 1.0)
    lv = o.leave_notice_monthly
    leave_a = lv["base"] + lv["mobility"] * mobility + lv["drug_peers"] * peers
    visits = np.minimum(load_factor, o.home_visit_max_factor) * o.home_visit_monthly
    return TraceRates(
        missed_a=missed_a,
        missed_u=_combine(missed_a, miss["using"]),
        visit=_per_day(visits),
        visit_watched=_per_day(visits * o.watch_visit_factor),
        not_home_a=not_home_a,
        not_home_u=_combine(not_home_a, nh["using"]),
        concern_a=concern_a,
        concern_u=_combine(concern_a, cc["using"]),
        moving=o.home_visit_moving * mobility,
        counselling_a=_per_day(counsel),
        counselling_u=_per_day(counsel * o.counselling_using_factor),
        peer=_per_day(peer),
        family=_per_day(family),
        medicine_a=_per_day(med_a),
        medicine_u=_per_day(med_a + med["using"] * opioid),
        leave_a=_per_day(leave_a),
        leave_u=_per_day(leave_a + lv["using"]),
        family_concern_u=_per_day(o.family_concern_monthly * cov["family_support"]),
    )


@dataclass
class Today:
    """Who is where on one day, for the people of a month's frame."""

    day: int
    person: np.ndarray  # global person index
    using: np.ndarray
    in_contact: np.ndarray
    absconded: np.ndarray
    check_in_due: np.ndarray
    mobility: np.ndarray
    #: day of the planned follow-up visit (NO_FOLLOW_UP if none); updated in place
    follow_up: np.ndarray
    #: last day on the worker's watch list (< day if not on it); updated in place
    watch_until: np.ndarray
    #: per-person multiplier of the chance a sign is followed up (shifts.worker_leaves)
    follow_up_factor: np.ndarray | None = None


def emit_traces(buf: EventBuffer, cfg: SimConfig, tr: TraceRates, t: Today) -> None:
    """Draw one day of routine observations and the worker's reactions into the buffer."""
    o, rng, d, u = cfg.observation, buf.rng, t.day, t.using
    draw = rng.random((11, len(u)), dtype=np.float32)
    lag = o.worker_delay_days
    reachable = t.in_contact | t.absconded
    due = t.check_in_due & reachable
    missed = t.absconded | (draw[0] < np.where(u, tr.missed_u, tr.missed_a))
    result = np.where(missed, RESULT["missed"], RESULT["attended"])
    buf.add(t.person[due], d, "check_in", "worker", result[due], delay_days=lag)
    watched = t.watch_until >= d
    routine = t.in_contact & (draw[1] < np.where(watched, tr.visit_watched, tr.visit))
    tried = t.absconded & (draw[1] < o.absconded_home_visit_daily)
    follow = reachable & (t.follow_up == d)
    t.follow_up[t.follow_up <= d] = NO_FOLLOW_UP
    visit = routine | tried | follow
    v = np.flatnonzero(visit)
    uv = u[v]
    not_home = t.absconded[v] | (draw[2, v] < np.where(uv, tr.not_home_u[v], tr.not_home_a[v]))
    moving = ~not_home & (draw[3, v] < tr.moving[v])
    concern = ~not_home & ~moving & (draw[4, v] < np.where(uv, tr.concern_u[v], tr.concern_a[v]))
    note = np.select(
        [not_home, moving, concern],
        [RESULT["not_home"], RESULT["moving"], RESULT["concern"]],
        RESULT["met"],
    )
    buf.add(t.person[v], d, "home_visit", "worker", note, delay_days=lag)
    counsel = t.in_contact & (draw[5] < np.where(u, tr.counselling_u, tr.counselling_a))
    buf.add(t.person[counsel], d, "counselling", "worker", delay_days=lag)
    peer = t.in_contact & (draw[6] < tr.peer)
    buf.add(t.person[peer], d, "peer_education", "worker", delay_days=lag)
    worried = t.in_contact & u & (draw[10] < tr.family_concern_u)
    family = (t.in_contact & (draw[7] < tr.family)) | (
        t.absconded & (draw[7] < o.absconded_family_contact_daily)
    )
    buf.add(t.person[family | worried], d, "family_contact", "worker", delay_days=lag)
    medicine = reachable & (draw[8] < np.where(u, tr.medicine_u, tr.medicine_a))
    if medicine.any():
        q = o.medicine_quantity_mean
        mean = np.where(u[medicine], q["using"], q["abstinent"])
        quantity = 1 + rng.poisson(np.maximum(mean - 1, 0))
        buf.add(
            t.person[medicine], d, "controlled_medicine_purchase", "pharmacy",
            value=quantity.astype(float), delay_days=o.pharmacy_delay_days,
        )  # fmt: skip
    leave = t.in_contact & (draw[9] < np.where(u, tr.leave_u, tr.leave_a))
    if leave.any():
        away = 3 + rng.geometric(1 / max(o.leave_days_mean - 2, 1.0), leave.sum()) - 1
        buf.add(
            t.person[leave], d, "leave_notice", "worker", value=away.astype(float), delay_days=lag
        )
    signs = {name: np.zeros(len(u), dtype=bool) for name in FOLLOW_UP_TRIGGERS}
    signs["missed_check_in"] = due & missed
    signs["not_home"][v[not_home]] = True
    signs["concern"][v[concern]] = True
    signs["medicine"] = medicine
    signs["family_concern"] = worried
    _react(rng, o, d, signs, v[moving], t)


def _react(
    rng: np.random.Generator,
    o: Observation,
    d: int,
    signs: dict[str, np.ndarray],
    moving: np.ndarray,
    t: Today,
) -> None:
    """The worker's reaction to today's warning signs: follow-up visits and the watch list."""
    n = len(t.using)
    chance = np.zeros(n)
    for name, hit in signs.items():
        chance = np.where(hit, 1 - (1 - chance) * (1 - o.follow_up_share[name]), chance)
    seen = chance > 0
    seen[moving] = True
    if t.follow_up_factor is not None:
        chance = chance * t.follow_up_factor
    t.watch_until[seen] = np.maximum(t.watch_until[seen], d + o.watch_days)
    go = np.flatnonzero(rng.random(n) < chance)
    if len(go):
        lo, hi = o.follow_up_days
        when = (d + rng.integers(lo, hi + 1, len(go))).astype(np.int32)
        t.follow_up[go] = np.minimum(t.follow_up[go], when)
