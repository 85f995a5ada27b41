"""The two lists a day's scores are acted on: the district's top fraction and each caseload's top k.

Contract: :func:`served_lists` takes one or more days of scored rows
(``as_of``, ``district``, ``worker_id``, ``person_id``, ``p``) and returns two
boolean masks: the top ``ceil(top_fraction * n)`` of each (day, district) list
and the top ``per_worker`` of each (day, worker) caseload. When the rows carry
the ranks that were served (``rank_district``, ``rank_caseload``, 1 = first)
those are used, so the masks are exactly the lists people saw; otherwise the
serving order is rebuilt: p descending, ties by person_id (docs/serving.md).
The capacities follow :mod:`models.metrics` (``top_fraction`` 0.10 and
``per_worker`` 2 by default, ``models.yaml`` ``metrics``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def _rank(frame: pd.DataFrame, keys: list[str]) -> np.ndarray:
    up = [True] * len(keys) + [False, True]
    order = frame.sort_values([*keys, "p", "person_id"], ascending=up, kind="stable")
    ranks = order.groupby(keys, sort=False, observed=True).cumcount().to_numpy() + 1
    out = np.empty(len(frame), dtype=np.int64)
    out[frame.index.get_indexer(order.index)] = ranks
    return out


def served_lists(
    frame: pd.DataFrame, top_fraction: float = 0.10, per_worker: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """(on the district's top list, on the caseload's top list) for every row."""
    frame = frame.reset_index(drop=True)
    district = ["as_of", "district"] if "district" in frame.columns else ["as_of"]
    rank_d = (
        frame["rank_district"].to_numpy(dtype=np.int64)
        if "rank_district" in frame.columns
        else _rank(frame, district)
    )
    rank_c = (
        frame["rank_caseload"].to_numpy(dtype=np.int64)
        if "rank_caseload" in frame.columns
        else _rank(frame, ["as_of", "worker_id"])
    )
    size = frame.groupby(district, observed=True)["p"].transform("size").to_numpy()
    k = np.ceil(top_fraction * size - 1e-9).astype(np.int64)
    return rank_d <= k, rank_c <= per_worker


def capacity(n: int, top_fraction: float) -> int:
    """How many rows the district's top list holds for a day of ``n`` rows."""
    return math.ceil(top_fraction * n - 1e-9)


def scope_groups(frame: pd.DataFrame) -> list[tuple[str, str, dict[Any, Any]]]:
    """(scope, column, {(as_of, key): row positions}) for every scope a figure is given for.

    ``district`` and ``town`` always; ``group`` for each fairness attribute column
    present (``attr_<name>``), keyed ``<name>=<value>`` — the groups of the
    fairness audit, so a kind of person the model misjudges shows up by itself.
    """
    frame = frame.reset_index(drop=True)
    out: list[tuple[str, str, dict[Any, Any]]] = []
    for scope in ("district", "town"):
        out.append((scope, scope, frame.groupby(["as_of", scope], observed=True).indices))
    for col in sorted(c for c in frame.columns if str(c).startswith("attr_")):
        name = str(col)[len("attr_") :]
        keys = name + "=" + frame[col].astype("string").fillna("unknown")
        groups = frame.assign(_key=keys).groupby(["as_of", "_key"], observed=True).indices
        out.append(("group", col, groups))
    return out
