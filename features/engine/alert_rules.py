"""The alert and cohort-flag rules, written once for every backend.

Contract: a backend computes, per entity row and from the events visible at
its as_of (the time rule and corrections, exactly as for features), the few
aggregates the catalog's alerts and flags need — :class:`AlertInputs`: the
latest ts of each rule's events, the latest contact, the latest event
*recorded* in the last ``recent_days`` with its value, the sums of values in a
window (and the window before it) and the distinct places named in a window —
and
:func:`raise_alerts` turns them into :class:`~features.engine.protocol.Alerts`
by the rules of :class:`features.catalog.AlertSpec` /
:class:`~features.catalog.CohortFlagSpec` (an overdue alert's interval is the
schedule's, by :func:`features.schedule.interval_days`, the rule the due lists
use). Times are int64 microseconds of naive local time, ``NO_TIME`` when there
is none; day counts are floored whole days, as pandas' ``Timedelta.days``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.catalog import AlertSettings, Catalog
from features.engine.codes import DAY_US
from features.engine.protocol import NO_TIME, Alerts
from features.schedule import interval_days


@dataclass
class AlertInputs:
    """What the rules read, per entity row (arrays of one length)."""

    as_us: np.ndarray
    start_us: np.ndarray  # programme start (midnight)
    end_us: np.ndarray  # planned end (midnight of the last day)
    worker_ids: np.ndarray  # object: the person's worker_id as stored (None when missing)
    #: alert or flag name -> latest ts of its ``events`` (NO_TIME: none)
    last: dict[str, np.ndarray] = field(default_factory=dict)
    #: no_contact_since alert -> latest ts of its contact events
    contact: dict[str, np.ndarray] = field(default_factory=dict)
    #: recorded_recently alert -> (ts, value) of the latest such event recorded recently
    recent: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: sum_above / sharp_rise alert -> (sum of values with ``as_of - ts <= window``,
    #: sum with ``window < as_of - ts <= window + prior``; zeros for sum_above)
    sums: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: places_at_least alert -> distinct places named within its window
    places: dict[str, np.ndarray] = field(default_factory=dict)


def _days(later_us: np.ndarray, earlier_us: np.ndarray) -> np.ndarray:
    return np.asarray((later_us - earlier_us) // DAY_US)


def _unassigned(worker_ids: np.ndarray, settings: AlertSettings) -> np.ndarray:
    markers = set(settings.unassigned_workers)
    return np.array(
        [("" if w is None else str(w)).strip().lower() in markers for w in worker_ids], bool
    )


def raise_alerts(catalog: Catalog, settings: AlertSettings, got: AlertInputs) -> Alerts:
    """The catalog's alerts (kind order, then row) and each row's cohort-flag bits."""
    n = len(got.as_us)
    as_day = got.as_us // DAY_US
    start_day = got.start_us // DAY_US
    served = as_day - start_day
    rows, kinds, since, days, value = [], [], [], [], []
    for alert in catalog.alerts:
        if alert.rule == "overdue":
            interval = interval_days(alert.every_days or (0, 0, 0, 0), served)
            last = got.last[alert.name]
            last_day = np.where(last == NO_TIME, start_day, last // DAY_US)
            due_us = (last_day + interval + settings.grace_days) * DAY_US
            late = _days(got.as_us, due_us)
            hit = np.flatnonzero(late > 0)
            found_since, found_days = due_us[hit], late[hit].astype(np.float64)
            found_value = np.full(len(hit), np.nan)
        elif alert.rule == "recorded_recently":
            ts, val = got.recent[alert.name]
            hit = np.flatnonzero(ts != NO_TIME)
            found_since, found_value = ts[hit], val[hit]
            found_days = np.full(len(hit), np.nan)
        elif alert.rule in {"sum_above", "places_at_least", "sharp_rise"}:
            if alert.rule == "places_at_least":
                figure = got.places[alert.name].astype(np.float64)
                on = figure >= (alert.at_least or 0)
            else:
                figure, before = got.sums[alert.name]
                if alert.rule == "sum_above":
                    on = figure > (alert.above or 0.0)
                else:
                    scale = (alert.window_days or 0) / (alert.prior_days or 1)
                    on = (
                        (figure >= (alert.at_least or 0.0))
                        & (before > 0)
                        & (figure > (alert.factor or 0.0) * before * scale)
                    )
            hit = np.flatnonzero(on)
            found_since, found_value = got.last[alert.name][hit], figure[hit]
            found_days = np.full(len(hit), np.nan)
        else:  # no_contact_since
            moved, contact = got.last[alert.name], got.contact[alert.name]
            alone = (moved != NO_TIME) & ((contact == NO_TIME) | (contact <= moved))
            hit = np.flatnonzero(alone | _unassigned(got.worker_ids, settings))
            found_since = moved[hit]
            found_days = np.full(len(hit), np.nan)
            found_value = np.full(len(hit), np.nan)
        rows.append(hit.astype(np.int64))
        kinds.append(np.full(len(hit), alert.name, dtype=object))
        since.append(np.asarray(found_since, np.int64))
        days.append(np.asarray(found_days, np.float64))
        value.append(np.asarray(found_value, np.float64))
    mask = np.zeros(n, np.int64)
    for flag in catalog.cohort_flags:
        if flag.rule == "ends_within":
            left = _days(got.end_us, got.as_us)
            on = (left >= 0) & (left <= settings.agreement_ending_days)
        elif flag.rule == "started_within":
            on = _days(got.as_us, got.start_us) < settings.first_days
        else:  # event_within
            last = got.last[flag.name]
            on = (last != NO_TIME) & (last >= got.as_us - settings.transferred_in_days * DAY_US)
        mask |= np.where(on, flag.bit, 0)
    if not rows:
        empty = np.zeros(0)
        return Alerts(
            empty.astype(np.int64), empty.astype(object), empty.astype(np.int64), empty, empty, mask
        )
    return Alerts(
        np.concatenate(rows),
        np.concatenate(kinds),
        np.concatenate(since),
        np.concatenate(days),
        np.concatenate(value),
        mask,
    )
