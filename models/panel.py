"""Entity panels and temporal folds (triage's timechop, DESIGN §3).

Contract:

* :func:`load_dir` / :func:`load_store` read persons and events (input contract,
  validated) and the simulator's ``truth.parquet`` when present;
  :func:`known_at` keeps what the system knew before a date (events with
  ``recorded_at < as_of``, persons whose programme had started).
* :func:`build_panel` builds every cohort row on the panel's as_of dates with
  the catalog's features and both labels (:func:`features.jobs.run_features_job`),
  plus columns that are *not* model inputs: ``worker_id`` (per-worker capacity),
  the fairness attributes (``attr_*``) and the truth ``p_<outcome>``.
* :func:`make_folds` cuts rolling folds: every training as_of has its label
  window ``[as_of, as_of + horizon)`` end on or before the first validation
  as_of, and every validation window ends on or before the first test as_of.
  :meth:`Fold.check` asserts exactly that; :func:`production_fold` is the same
  rule with the data cutoff in place of a test period.
"""

from __future__ import annotations

import fnmatch
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.catalog import load_catalog
from features.config import OUTCOMES
from features.jobs import run_features_job
from models.config import FoldConfig, ModelConfig, span_offset

KEYS = ("person_id", "as_of")


@dataclass(frozen=True)
class InputData:
    """Persons and events in canonical form, and the simulator's truth if any."""

    persons: pd.DataFrame
    events: pd.DataFrame
    truth: pd.DataFrame | None = None
    source: str = ""
    rejected_rows: int = 0


def _read_truth(path: Path | None) -> pd.DataFrame | None:
    if path is None or not path.exists():
        return None
    truth = pd.read_parquet(path)
    truth["as_of"] = pd.to_datetime(truth["as_of"]).astype("datetime64[us]")
    return truth


def load_dir(directory: Path, truth: Path | None = None) -> InputData:
    """``DIR/persons.*`` and ``DIR/events.*``, validated (bad rows are left out and counted)."""
    from features.validate import find_input, read_input, validate_events, validate_persons

    paths = {t: find_input(directory, t) for t in ("persons", "events")}
    missing = [t for t, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(f"{directory}: no {' or '.join(missing)}.csv/.parquet found")
    persons = validate_persons(read_input(paths["persons"]))  # type: ignore[arg-type]
    events = validate_events(read_input(paths["events"]), persons.good["person_id"])  # type: ignore[arg-type]
    return InputData(
        persons.good,
        events.good,
        _read_truth(truth or directory / "truth.parquet"),
        str(directory),
        persons.rejected_rows + events.rejected_rows,
    )


def load_store(db_url: str, truth: Path | None = None) -> InputData:
    """Everything the service database holds (what ``sunflower ingest`` stored)."""
    from features.store import load_events, load_persons, make_engine

    engine = make_engine(db_url)
    try:
        persons, events = load_persons(engine), load_events(engine)
    finally:
        engine.dispose()
    if persons.empty:
        raise ValueError("the service database holds no persons: run `sunflower ingest DIR` first")
    return InputData(persons, events, _read_truth(truth), "service database")


def known_at(data: InputData, as_of: pd.Timestamp) -> InputData:
    """What the system knew before ``as_of``: the point-in-time rule applied to the inputs."""
    events = data.events[data.events["recorded_at"] < as_of]
    persons = data.persons[pd.to_datetime(data.persons["program_start"]) < as_of]
    events = events[events["person_id"].isin(persons["person_id"])]
    truth = None if data.truth is None else data.truth[data.truth["as_of"] < as_of]
    return InputData(persons, events, truth, f"{data.source} known at {as_of.date()}")


@dataclass
class Panel:
    """Cohort rows (person, as_of) with features, labels and audit-only columns."""

    frame: pd.DataFrame
    feature_names: list[str]
    cutoff: pd.Timestamp
    horizon_days: int
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def dates(self) -> list[pd.Timestamp]:
        return sorted(pd.Timestamp(d) for d in self.frame["as_of"].unique())

    def rows(self, outcome: str, dates: tuple[pd.Timestamp, ...]) -> pd.DataFrame:
        """Rows on ``dates`` whose ``outcome`` label is known."""
        label = self.frame[f"label_{outcome}"]
        return self.frame[self.frame["as_of"].isin(list(dates)) & label.notna()]


def model_features(cfg: ModelConfig) -> list[str]:
    """The catalog's columns minus the configured exclusions (fairness policy)."""
    names = [f.name for f in load_catalog().features()]
    return [n for n in names if not any(fnmatch.fnmatch(n, p) for p in cfg.exclude_features)]


def _age_band(age: pd.Series, edges: tuple[int, ...]) -> pd.Series:
    labels = [f"<{edges[0]}"]
    labels += [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:], strict=False)]
    labels += [f"{edges[-1]}+"]
    bins = [-np.inf, *edges, np.inf]
    return pd.cut(age, bins=bins, labels=labels, right=False).astype(str)


def build_panel(data: InputData, cfg: ModelConfig, workdir: Path | None = None) -> Panel:
    """Features and labels on every panel date up to the data cutoff."""
    persons, events = data.persons, data.events
    if events.empty:
        raise ValueError("no events: nothing to learn from")
    cutoff = pd.Timestamp(events["recorded_at"].max())
    # Default start: the month of the first recorded event (no history before it).
    first = pd.Timestamp(cfg.panel.start or events["ts"].min())
    start = first.normalize().replace(day=1) if cfg.panel.start is None else first
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        manifest = run_features_job(
            persons,
            events,
            out=Path(tmp),
            panel=(start, cutoff.normalize(), cfg.panel.every),
            horizon_days=cfg.panel.horizon_days,
        )
        frame = pd.read_parquet(Path(tmp) / "features.parquet")
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    frame = frame.sort_values(list(KEYS), kind="stable").reset_index(drop=True)
    frame = _attach_audit_columns(frame, persons, data.truth, cfg)
    return Panel(frame, model_features(cfg), cutoff, cfg.panel.horizon_days, manifest)


def _attach_audit_columns(
    frame: pd.DataFrame, persons: pd.DataFrame, truth: pd.DataFrame | None, cfg: ModelConfig
) -> pd.DataFrame:
    cols = persons[["person_id", "worker_id", "sex", "household", "primary_drug"]].rename(
        columns={"sex": "attr_sex", "household": "attr_household", "primary_drug": "attr_drug"}
    )
    out = frame.merge(cols, on="person_id", how="left", validate="many_to_one")
    out["attr_household"] = out["attr_household"].astype("string").fillna("unknown")
    out["attr_age_band"] = _age_band(out["age"], cfg.fairness.age_bands)
    for outcome in OUTCOMES:
        out[f"p_{outcome}"] = np.nan
        if truth is not None:
            t = truth[truth["outcome"] == outcome][["person_id", "as_of", "p"]]
            merged = out[list(KEYS)].merge(t, on=list(KEYS), how="left", validate="one_to_one")
            out[f"p_{outcome}"] = merged["p"].to_numpy()
    return out


@dataclass(frozen=True)
class Fold:
    """One temporal split; ``index`` 0 is the latest."""

    index: int
    train: tuple[pd.Timestamp, ...]
    valid: tuple[pd.Timestamp, ...]
    test: tuple[pd.Timestamp, ...]

    def check(self, horizon_days: int) -> None:
        """Every label window ends on or before the next period's first as_of."""
        h = pd.Timedelta(days=horizon_days)
        if self.valid and self.train and max(self.train) + h > min(self.valid):
            raise AssertionError(f"fold {self.index}: a training window overlaps validation")
        if self.test and self.valid and max(self.valid) + h > min(self.test):
            raise AssertionError(f"fold {self.index}: a validation window overlaps the test")

    def describe(self) -> dict[str, str]:
        def span(d: tuple[pd.Timestamp, ...]) -> str:
            return f"{min(d).date()}..{max(d).date()} ({len(d)})" if d else "-"

        return {"train": span(self.train), "valid": span(self.valid), "test": span(self.test)}


def _split(
    dates: list[pd.Timestamp], test_start: pd.Timestamp, h: pd.Timedelta, cfg: FoldConfig
) -> tuple[tuple[pd.Timestamp, ...], tuple[pd.Timestamp, ...]]:
    before = [d for d in dates if d + h <= test_start]
    if not before:
        return (), ()
    valid_from = before[-1] - span_offset(cfg.valid_span)
    valid = tuple(d for d in before if d > valid_from)
    train = tuple(d for d in dates if d + h <= min(valid))
    return train, valid


def make_folds(
    dates: list[pd.Timestamp], cutoff: pd.Timestamp, horizon_days: int, cfg: FoldConfig
) -> list[Fold]:
    """Rolling folds counting back from the latest as_of with a complete label window."""
    h = pd.Timedelta(days=horizon_days)
    labelled = sorted(d for d in dates if d + h <= cutoff)
    folds: list[Fold] = []
    if not labelled:
        raise ValueError(f"no as_of date has a complete {horizon_days}-day label window")
    test_end = labelled[-1]
    for k in range(cfg.n_folds):
        test = tuple(d for d in labelled if test_end - span_offset(cfg.test_span) < d <= test_end)
        if not test:
            break
        train, valid = _split(dates, min(test), h, cfg)
        if len(train) < cfg.min_train_dates or not valid:
            break
        fold = Fold(k, train, valid, test)
        fold.check(horizon_days)
        folds.append(fold)
        test_end = test_end - span_offset(cfg.step)
    if not folds:
        raise ValueError(
            f"too little history for one fold: need {cfg.min_train_dates} training dates, a "
            f"{cfg.valid_span} validation and a {cfg.test_span} test period, "
            f"{horizon_days} days apart"
        )
    return folds


def production_fold(
    dates: list[pd.Timestamp], cutoff: pd.Timestamp, horizon_days: int, cfg: FoldConfig
) -> Fold:
    """The split for the model that is registered: the newest data, no test period."""
    train, valid = _split(dates, cutoff, pd.Timedelta(days=horizon_days), cfg)
    if not train or not valid:
        raise ValueError("too little labelled history to train a model")
    fold = Fold(-1, train, valid, ())
    fold.check(horizon_days)
    return fold
