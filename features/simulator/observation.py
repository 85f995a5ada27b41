"""What the system sees: the event buffer and the traces hidden states leave.

Contract: :class:`EventBuffer` collects events as compact numpy columns
(person index, day, type code, result code, value, time of day, recording
delay, source code) in the order they are added; :mod:`features.simulator.io`
turns them into the contract's columns. :func:`trace_rates` gives, for a
calendar month, the daily chance of each routine observation (check-in
missed, home visit and its note, counselling, peer education, family contact,
controlled-medicine purchase, leave notice) for a person abstinent or using;
:func:`emit_traces` draws one day of them. None of these observations feeds
back into the hidden state: they are honest, noisy traces of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract import EVENT_RESULTS, EVENT_TYPES, SOURCES
from features.simulator.config import SimConfig
from features.simulator.hazard import Cov, Static
from features.simulator.population import DAYS_PER_MONTH

#: Result strings used by the simulator: the contract's enumerations first,
#: then the free-text notes of home visits.
RESULTS: tuple[str, ...] = tuple(
    dict.fromkeys([r for rs in EVENT_RESULTS.values() for r in rs])
) + ("met", "not_home", "concern", "moving")
TYPE = {name: i for i, name in enumerate(EVENT_TYPES)}
RESULT = {name: i for i, name in enumerate(RESULTS)}
SOURCE = {name: i for i, name in enumerate(SOURCES)}

HOUR = 3600
DAYTIME = (8 * HOUR + 1800, 17 * HOUR + 1800)
EVENING = (18 * HOUR, 23 * HOUR)


class EventBuffer:
    """Append-only event columns; times are (day, seconds into the day)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._parts: list[tuple[np.ndarray, ...]] = []
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
        rng = self.rng
        if result is None:
            codes = np.full(n, -1, dtype=np.int8)
        elif isinstance(result, str):
            codes = np.full(n, RESULT[result], dtype=np.int8)
        else:
            codes = result.astype(np.int8)
        tod = rng.integers(clock[0], clock[1], n, dtype=np.int32)
        lag = rng.integers(delay_days[0], delay_days[1] + 1, n, dtype=np.int32) * 86400
        lag += rng.integers(0, 2 * HOUR, n, dtype=np.int32)
        vals = np.full(n, np.nan, dtype=np.float32) if value is None else value.astype(np.float32)
        self._parts.append(
            (
                person.astype(np.int32),
                np.full(n, day, dtype=np.int32),
                np.full(n, TYPE[etype], dtype=np.int8),
                codes,
                vals,
                tod,
                lag,
                np.full(n, SOURCE[source], dtype=np.int8),
            )
        )
        self.count += n

    def columns(self) -> dict[str, np.ndarray]:
        """All events so far, concatenated (the buffer is emptied)."""
        names = ("person", "day", "type", "result", "value", "tod", "lag", "source")
        dtypes = (np.int32, np.int32, np.int8, np.int8, np.float32, np.int32, np.int32, np.int8)
        out = {}
        for i, (name, dtype) in enumerate(zip(names, dtypes, strict=True)):
            out[name] = (
                np.concatenate([p[i] for p in self._parts])
                if self._parts
                else np.zeros(0, dtype=dtype)
            )
        self._parts = []
        return out


def _per_day(monthly_count) -> np.ndarray:
    """A mean count per month as a daily chance."""
    return np.minimum(np.asarray(monthly_count, dtype=float) / DAYS_PER_MONTH, 0.9)


def _combine(*probs) -> np.ndarray:
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


def emit_traces(buf: EventBuffer, cfg: SimConfig, tr: TraceRates, t: Today) -> None:
    """Draw one day of routine observations into the buffer."""
    o, rng, d, u = cfg.observation, buf.rng, t.day, t.using
    draw = rng.random((10, len(u)), dtype=np.float32)
    lag = o.worker_delay_days
    due = t.check_in_due & (t.in_contact | t.absconded)
    missed = t.absconded | (draw[0] < np.where(u, tr.missed_u, tr.missed_a))
    result = np.where(missed, RESULT["missed"], RESULT["attended"])
    buf.add(t.person[due], d, "check_in", "worker", result[due], delay_days=lag)
    visit = t.in_contact & (draw[1] < tr.visit)
    not_home = draw[2] < np.where(u, tr.not_home_u, tr.not_home_a)
    moving = ~not_home & (draw[3] < tr.moving)
    concern = ~not_home & ~moving & (draw[4] < np.where(u, tr.concern_u, tr.concern_a))
    note = np.select(
        [not_home, moving, concern],
        [RESULT["not_home"], RESULT["moving"], RESULT["concern"]],
        RESULT["met"],
    )
    tried = t.absconded & (draw[1] < o.absconded_home_visit_daily)
    note = np.where(tried, RESULT["not_home"], note)
    visit |= tried
    buf.add(t.person[visit], d, "home_visit", "worker", note[visit], delay_days=lag)
    counsel = t.in_contact & (draw[5] < np.where(u, tr.counselling_u, tr.counselling_a))
    buf.add(t.person[counsel], d, "counselling", "worker", delay_days=lag)
    peer = t.in_contact & (draw[6] < tr.peer)
    buf.add(t.person[peer], d, "peer_education", "worker", delay_days=lag)
    family = (t.in_contact & (draw[7] < tr.family)) | (
        t.absconded & (draw[7] < o.absconded_family_contact_daily)
    )
    buf.add(t.person[family], d, "family_contact", "worker", delay_days=lag)
    medicine = (t.in_contact | t.absconded) & (draw[8] < np.where(u, tr.medicine_u, tr.medicine_a))
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
