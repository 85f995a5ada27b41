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
from features.config import OUTCOMES, LabelConfig, load_label_config
from features.jobs import panel_dates, run_features_job
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


def horizon_of(cfg: ModelConfig, labels: LabelConfig | None = None) -> int:
    """The label window in days: the model config's, else the label configuration's."""
    return cfg.panel.horizon_days or (labels or load_label_config()).horizon_days


def programme_entities(
    persons: pd.DataFrame, cutoff: pd.Timestamp, first_day: int, every: str
) -> pd.DataFrame:
    """(person_id, as_of): each person on programme day ``first_day``, then every ``every``,
    while the agreement runs and up to the data cutoff."""
    step = span_offset(every)
    start = pd.to_datetime(persons["program_start"]).dt.normalize()
    end = pd.to_datetime(persons["program_end"]).dt.normalize() + pd.Timedelta(days=1)
    rows: list[pd.DataFrame] = []
    k = 0
    as_of = start + pd.Timedelta(days=first_day)
    last = cutoff.normalize()
    while True:
        live = (as_of < end) & (as_of <= last)
        if not live.any():
            break
        rows.append(pd.DataFrame({"person_id": persons["person_id"][live], "as_of": as_of[live]}))
        k += 1
        as_of = start + pd.Timedelta(days=first_day) + step * k
    if not rows:
        return pd.DataFrame({"person_id": pd.Series(dtype="string"), "as_of": pd.Series(
            dtype="datetime64[us]")})  # fmt: skip
    out = pd.concat(rows, ignore_index=True)
    out["as_of"] = out["as_of"].astype("datetime64[us]")
    return out.sort_values(["as_of", "person_id"], kind="stable").reset_index(drop=True)


def build_panel(
    data: InputData,
    cfg: ModelConfig,
    workdir: Path | None = None,
    labels: LabelConfig | None = None,
) -> Panel:
    """Features and labels on every panel date up to the data cutoff."""
    persons, events = data.persons, data.events
    if events.empty:
        raise ValueError("no events: nothing to learn from; ingest a folder with events first")
    labels = labels or load_label_config()
    horizon = horizon_of(cfg, labels)
    cutoff = pd.Timestamp(events["recorded_at"].max())
    # Default start: the month of the first recorded event (no history before it).
    first = pd.Timestamp(cfg.panel.start or events["ts"].min())
    start = first.normalize().replace(day=1) if cfg.panel.start is None else first
    grid: dict[str, Any]
    if cfg.panel.grid == "programme":
        entities = programme_entities(persons, cutoff, cfg.panel.first_day, cfg.panel.every)
        grid = {"entities": entities}
    elif cfg.panel.offsets_days == (0,):
        grid = {"panel": (start, cutoff.normalize(), cfg.panel.every)}
    else:
        base = panel_dates(start, cutoff.normalize(), cfg.panel.every)
        days = sorted({d + pd.Timedelta(days=k) for d in base for k in cfg.panel.offsets_days})
        grid = {"dates": [d for d in days if d <= cutoff.normalize()]}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        manifest = run_features_job(
            persons, events, out=Path(tmp), horizon_days=horizon, config=labels, **grid
        )
        frame = pd.read_parquet(Path(tmp) / "features.parquet")
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    frame = frame.sort_values(list(KEYS), kind="stable").reset_index(drop=True)
    frame = _attach_audit_columns(frame, persons, data.truth, cfg)
    return Panel(frame, model_features(cfg), cutoff, horizon, manifest)


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


def _folds(
    dates: list[pd.Timestamp], cutoff: pd.Timestamp, horizon_days: int, cfg: FoldConfig
) -> list[Fold]:
    """Rolling folds counting back from the latest as_of with a complete label window."""
    h = pd.Timedelta(days=horizon_days)
    labelled = sorted(d for d in dates if d + h <= cutoff)
    folds: list[Fold] = []
    if not labelled:
        return folds
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
    return folds


def _grid_step(dates: list[pd.Timestamp]) -> str:
    """The panel's typical spacing as a span (``1M`` for monthly dates, else days)."""
    gaps = np.diff(np.array(sorted(set(dates)), dtype="datetime64[D]")).astype(int)
    if not len(gaps):
        return "1D"
    gap = int(np.median(gaps))
    return "1M" if 28 <= gap <= 31 else f"{max(gap, 1)}D"


def fold_plan(
    dates: list[pd.Timestamp], cutoff: pd.Timestamp, horizon_days: int, cfg: FoldConfig
) -> tuple[FoldConfig, str | None]:
    """The configured fold plan, or a smaller one that fits the data, with a note saying so.

    Raises ValueError with one sentence naming what is missing when even the
    smallest plan (one grid step of validation and test, 3 training dates)
    does not fit.
    """
    if _folds(dates, cutoff, horizon_days, cfg):
        return cfg, None
    step = _grid_step(dates)
    small = cfg.model_copy(
        update={"test_span": step, "valid_span": step, "step": step,
                "min_train_dates": min(cfg.min_train_dates, 3)}
    )  # fmt: skip
    if _folds(dates, cutoff, horizon_days, small):
        return small, (
            f"the history is too short for the configured folds ({cfg.test_span} test, "
            f"{cfg.valid_span} validation, {cfg.min_train_dates} training dates): "
            f"used {step} test and validation periods and at least "
            f"{small.min_train_dates} training dates"
        )
    h = pd.Timedelta(days=horizon_days)
    labelled = [d for d in dates if d + h <= cutoff]
    have = (
        f"{len(labelled)} as_of dates with a complete {horizon_days}-day label window "
        f"({min(labelled).date()}..{max(labelled).date()})"
        if labelled
        else f"no as_of date with a complete {horizon_days}-day label window before the "
        f"data cutoff {cutoff.date()}"
    )
    raise ValueError(
        f"too little history to train: the data has {have}, but one fold needs "
        f"{small.min_train_dates} training dates, a validation and a test date, each "
        f"{horizon_days} days after the last; use a longer history, a shorter horizon "
        f"(horizon_days in labels.yaml) or fewer/smaller folds in models.yaml"
    )


def make_folds(
    dates: list[pd.Timestamp], cutoff: pd.Timestamp, horizon_days: int, cfg: FoldConfig
) -> list[Fold]:
    """Rolling folds counting back from the latest as_of with a complete label window
    (the configured plan, or the smaller one :func:`fold_plan` chooses)."""
    plan, _note = fold_plan(dates, cutoff, horizon_days, cfg)
    return _folds(dates, cutoff, horizon_days, plan)


def production_fold(
    dates: list[pd.Timestamp], cutoff: pd.Timestamp, horizon_days: int, cfg: FoldConfig
) -> Fold:
    """The split for the model that is registered: the newest data, no test period."""
    plan, _note = fold_plan(dates, cutoff, horizon_days, cfg)
    train, valid = _split(dates, cutoff, pd.Timedelta(days=horizon_days), plan)
    if not train or not valid:
        raise ValueError(
            f"too little labelled history for the production model: no validation dates "
            f"whose {horizon_days}-day windows end before the data cutoff {cutoff.date()}"
        )
    fold = Fold(-1, train, valid, ())
    fold.check(horizon_days)
    return fold
