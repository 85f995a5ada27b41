"""What every backend of the feature engine takes and returns.

Contract: a :class:`Backend` evaluates entity rows of a
:class:`~features.engine.session.Session` against a catalog and a label
configuration and returns :class:`Evaluated` — the catalog's feature columns
(catalog order, one row per entity row in input order; none when only the
cohort is asked for) and each row's cohort status, one of ``STATUS_NAMES``
(``active`` is the cohort: in an agreement that has started and not ended,
no exit, not lost, not transferred out when the cohort excludes that) and,
when asked, the catalog's alerts and cohort flags (:class:`Alerts`) from the
same events under the same time rule. The
backends are the array engine (:mod:`features.engine.array_backend`, the hot
path) and the SQL reference (:mod:`features.engine.sql_backend`); a test
keeps them equal on random histories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from features.catalog import AlertSettings, Catalog
from features.config import LabelConfig
from features.engine.session import EntityRows, Session

#: Cohort statuses, in the order of their codes (0 = active).
STATUS_NAMES = np.array(
    ["active", "not_started", "custody", "exited", "ended", "lost_contact", "transferred_out"],
    dtype=object,
)
#: Entity rows evaluated at once (with the array engine's pair budget, bounds memory).
CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class Alerts:
    """The catalog's alerts and cohort flags at each entity row's as_of.

    One entry per (row, alert raised), ordered by the catalog's alert order, then
    row: ``since_us`` (µs; ``NO_TIME`` when none — the due date of an overdue
    alert, the event's ts of a recorded one, the transfer's ts), ``days``
    (overdue days, else NaN), ``value`` (the event's value, else NaN).
    ``cohort_mask`` holds each row's cohort-flag bits.
    """

    row: np.ndarray  # int64 entity row
    kind: np.ndarray  # object: alert name
    since_us: np.ndarray  # int64
    days: np.ndarray  # float64
    value: np.ndarray  # float64
    cohort_mask: np.ndarray  # int64 per entity row

    @classmethod
    def concat(cls, parts: list[tuple[Alerts, int]], n_kinds: list[str]) -> Alerts:
        """Chunks' alerts (each with its first row) as one, in kind order then row."""
        row = np.concatenate([a.row + lo for a, lo in parts])
        kind = np.concatenate([a.kind for a, _ in parts])
        rank = {k: i for i, k in enumerate(n_kinds)}
        order = np.lexsort((row, np.array([rank[k] for k in kind], np.int64)))
        return cls(
            row[order],
            kind[order],
            np.concatenate([a.since_us for a, _ in parts])[order],
            np.concatenate([a.days for a, _ in parts])[order],
            np.concatenate([a.value for a, _ in parts])[order],
            np.concatenate([a.cohort_mask for a, _ in parts]),
        )


#: ``Alerts.since_us`` of an alert without a time.
NO_TIME = np.iinfo(np.int64).min


@dataclass(frozen=True)
class Evaluated:
    """A backend's answer for entity rows: features, cohort status, alerts, row for row."""

    features: pd.DataFrame  # catalog columns, RangeIndex; no columns when cohort_only
    status: np.ndarray  # object: one of STATUS_NAMES per row
    alerts: Alerts | None = None  # when asked for (with_alerts)

    @property
    def in_cohort(self) -> np.ndarray:
        """Whether each row is in the cohort (status ``active``)."""
        return np.asarray(self.status == "active", dtype=bool)


class Backend(Protocol):
    """One way to evaluate the catalog (array engine, SQL reference, Spark)."""

    name: str

    def evaluate(
        self,
        session: Session,
        rows: EntityRows,
        catalog: Catalog,
        config: LabelConfig,
        *,
        cohort_only: bool = False,
        chunk_rows: int = CHUNK_ROWS,
        alerts: AlertSettings | None = None,
    ) -> Evaluated:
        """Features (unless ``cohort_only``), cohort status and, given ``alerts``
        (the thresholds), the catalog's alerts and cohort flags of ``rows``."""
        ...
