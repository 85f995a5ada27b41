"""A straightforward per-person pandas reference for the event features.

``reference_features(entities, events)`` computes the catalog's ``count``,
``sum``, ``days_since_last`` and ``last_category`` columns with one
``groupby("person_id").apply()`` over plain pandas masks — the way one would
write it without an engine. The benchmark times it on a sample; the tests use
it as an independent oracle for the SQL engine.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalog import EventFilter, FeatureSpec, load_catalog

KINDS = ("count", "sum", "days_since_last", "last_category")


def _mask(ev: pd.DataFrame, filters: EventFilter | tuple[EventFilter, ...]) -> np.ndarray:
    filters = (filters,) if isinstance(filters, EventFilter) else filters
    out = np.zeros(len(ev), dtype=bool)
    for f in filters:
        m = ev["type"].isin(f.types).to_numpy().copy()
        if f.results:
            m &= ev["result"].isin(f.results).fillna(False).to_numpy(dtype=bool)
        if f.not_results:
            m &= ~ev["result"].isin(f.not_results).fillna(False).to_numpy(dtype=bool)
        out |= m
    return out


def _superseded_at(ev: pd.DataFrame) -> pd.Series:
    """Earliest later recorded_at of the same (type, ts): when each version was corrected."""
    pairs = ev.reset_index().merge(
        ev[["type", "ts", "recorded_at"]], on=["type", "ts"], suffixes=("", "_later")
    )
    pairs = pairs[pairs["recorded_at_later"] > pairs["recorded_at"]]
    sup = pairs.groupby("index")["recorded_at_later"].min()
    return sup.reindex(ev.index).fillna(pd.Timestamp.max)


def _one(ev: pd.DataFrame, as_of: pd.Timestamp, specs: list[FeatureSpec]) -> dict[str, float]:
    ev = ev[(ev["recorded_at"] < as_of) & (ev["superseded_at"] >= as_of)]
    row: dict[str, float] = {}
    cat = load_catalog()
    for spec in specs:
        m = _mask(ev, cat.contact if spec.events == "contact" else spec.events)  # type: ignore[arg-type]
        sel = ev[m]
        for w in spec.windows:
            name = (
                spec.name
                if spec.windows == ("all",)
                else f"{spec.name}_{w if w == 'all' else f'{w}d'}"
            )
            in_w = sel if w == "all" else sel[sel["ts"] >= as_of - pd.Timedelta(days=int(w))]
            if spec.kind == "count":
                row[name] = len(in_w)
            elif spec.kind == "sum":
                row[name] = float(in_w["value"].sum())
            elif spec.kind == "days_since_last" and len(sel):
                row[name] = (as_of.normalize() - sel["ts"].max().normalize()).days
            elif spec.kind == "last_category":
                last = sel.sort_values("ts").iloc[-1]["result"] if len(sel) else "none"
                for choice in (*cat.choices_of(spec), "none"):
                    row[f"{spec.name}_{choice}"] = int(last == choice)
    return row


def reference_features(entities: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """The reference columns for each entity row (days_since_last: NaN when no event)."""
    specs = [s for s in load_catalog().specs if s.kind in KINDS]
    by_person = dict(iter(events.groupby("person_id")))
    empty = events.iloc[:0]

    def per_person(group: pd.DataFrame) -> pd.DataFrame:
        ev = by_person.get(group.name, empty)  # type: ignore[call-overload]  # a group key
        ev = ev.assign(superseded_at=_superseded_at(ev))
        rows = [_one(ev, pd.Timestamp(a), specs) for a in group["as_of"]]
        return pd.DataFrame(rows, index=group.index)

    return entities.groupby("person_id", group_keys=False).apply(per_person).sort_index()


def reference_rows(data: Path, persons: int = 20_000) -> tuple[float, int]:
    """Time the reference on the one-as_of rows of the first ``persons`` people."""
    rows = pd.read_parquet(data / "out_as_of" / "features.parquet", columns=["person_id", "as_of"])
    keep = rows["person_id"].iloc[:persons]
    entities = rows.iloc[:persons].reset_index(drop=True)
    events = pd.read_parquet(data / "events.parquet", filters=[("person_id", "in", list(keep))])
    events["person_id"] = events["person_id"].astype(str)
    events["type"] = events["type"].astype(str)
    t0 = time.perf_counter()
    reference_features(entities, events)
    return time.perf_counter() - t0, len(entities)
