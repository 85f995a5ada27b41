"""What every backend of the feature engine takes and returns.

Contract: a :class:`Backend` evaluates entity rows of a
:class:`~features.engine.session.Session` against a catalog and a label
configuration and returns :class:`Evaluated` — the catalog's feature columns
(catalog order, one row per entity row in input order; none when only the
cohort is asked for) and each row's cohort status, one of ``STATUS_NAMES``
(``active`` is the cohort: in an agreement that has started and not ended,
no exit, not lost, not transferred out when the cohort excludes that). The
backends are the array engine (:mod:`features.engine.array_backend`, the hot
path) and the SQL reference (:mod:`features.engine.sql_backend`); a test
keeps them equal on random histories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from features.catalog import Catalog
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
class Evaluated:
    """A backend's answer for entity rows: features and cohort status, row for row."""

    features: pd.DataFrame  # catalog columns, RangeIndex; no columns when cohort_only
    status: np.ndarray  # object: one of STATUS_NAMES per row

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
    ) -> Evaluated:
        """Features (unless ``cohort_only``) and cohort status of ``rows``."""
        ...
