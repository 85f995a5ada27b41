"""The feature catalog: every model input declared as data (``catalog.yaml``).

Contract: :func:`load_catalog` parses the YAML into pydantic models with
``extra="forbid"`` (a typo is an error) and checks every event type, result
and person column against :mod:`features.contract`. :meth:`Catalog.features`
expands each entry into the columns the engine writes, in a stable order, each
a :class:`Feature` with its family, window, zh-CN/en description template
(filled by :meth:`Feature.describe`), actionable flag and suggested plan item.

Encoding (stable, numeric): counts, sums and day counts are numbers;
categories are one-hot ``<name>_<choice>`` columns in contract order (plus
``<name>_unknown`` for an optional column, ``<name>_none`` when no event is
known); imputed values carry a 0/1 ``<name>_imp`` flag.

Missing-value rules (triage style): counts and sums of events are 0 when no
event is known; ``days_since_last`` without an event imputes either a constant
or the days since the programme started; optional person numbers impute a
constant; share trends impute 0. Each rule may add the ``_imp`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.contract import EVENT_CODED_RESULTS, EVENT_RESULTS, PERSON_COLUMNS

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")

Family = Literal[
    "static", "compliance", "testing", "support", "employment", "mobility", "pharmacy", "trend"
]
Kind = Literal[
    "count",
    "sum",
    "days_since_last",
    "last_category",
    "consecutive",
    "state_now",
    "state_days",
    "share_trend",
    "years_since",
    "years_between",
    "person_number",
    "person_category",
    "days_since_date",
    "days_until_date",
]
Window = int | Literal["all"]
Format = Literal["int", "float1", "percent", "flag"]
_WINDOWED = {"count", "sum", "days_since_last", "consecutive", "state_days"}
_PERSON = {c.name: c for c in PERSON_COLUMNS}
_EVENT_KINDS = {
    "count",
    "sum",
    "days_since_last",
    "last_category",
    "consecutive",
    "state_now",
    "state_days",
    "share_trend",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventFilter(_Strict):
    """Events of any of ``types`` whose result is any of ``results`` (empty: any)
    and none of ``not_results``.

    Results must be ones the pipeline codes for every listed type
    (``contract.EVENT_CODED_RESULTS``). ``not_results`` keeps every other
    result, including none and uncoded free text (e.g. a home visit whose note
    is not one of the known words).
    """

    types: tuple[str, ...]
    results: tuple[str, ...] = ()
    not_results: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _known(self) -> EventFilter:
        for t in self.types:
            if t not in EVENT_RESULTS:
                raise ValueError(f"unknown event type {t!r} (see features.contract)")
            coded = EVENT_CODED_RESULTS.get(t, ())
            bad = [r for r in (*self.results, *self.not_results) if r not in coded]
            if bad:
                raise ValueError(f"results {bad} are not coded for {t!r} (see features.contract)")
        return self

    def matches(self, event_type: str, result: str | None) -> bool:
        """Whether an event of this type and (coded) result passes the filter."""
        return (
            event_type in self.types
            and (not self.results or result in self.results)
            and result not in self.not_results
        )


class Missing(_Strict):
    """How a missing value is filled, and whether a ``_imp`` flag column is added."""

    rule: Literal["zero", "constant", "days_in_program"] = "zero"
    value: float = 0.0
    flag: bool = False


class PlanItem(_Strict):
    id: str
    zh: str
    en: str


class Periods(_Strict):
    zh: str
    en: str
    zh_all: str
    en_all: str


class FeatureSpec(_Strict):
    """One catalog entry; expands to one column per window or category."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    family: Family
    kind: Kind
    windows: tuple[Window, ...] = ("all",)
    events: EventFilter | Literal["contact"] | None = None
    versus: EventFilter | None = None
    column: str | None = None
    column_to: str | None = None
    choices: str | None = None
    recent: int | None = None
    prior: int | None = None
    missing: Missing = Missing()
    format: Format = "int"
    actionable: bool = False
    plan_item: str | None = None
    zh: str
    en: str
    missing_zh: str | None = None
    missing_en: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        if self.kind in _EVENT_KINDS and self.events is None:
            raise ValueError(f"{self.name}: kind {self.kind} needs `events`")
        if (
            self.kind in {"consecutive", "state_now", "state_days", "share_trend"}
            and not self.versus
        ):
            raise ValueError(f"{self.name}: kind {self.kind} needs `versus`")
        if self.kind == "share_trend" and not (self.recent and self.prior):
            raise ValueError(f"{self.name}: share_trend needs `recent` and `prior` days")
        for col in (self.column, self.column_to):
            if col is not None and col not in _PERSON:
                raise ValueError(f"{self.name}: unknown person column {col!r}")
        if self.kind not in _EVENT_KINDS and self.column is None:
            raise ValueError(f"{self.name}: kind {self.kind} needs `column`")
        if self.missing.flag and not (self.missing_zh and self.missing_en):
            raise ValueError(f"{self.name}: a flagged feature needs missing_zh and missing_en")
        return self


class AlertSettings(_Strict):
    """Thresholds of the alert and cohort rules (the catalog's defaults; a job may override)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grace_days: int = Field(default=7, ge=0)
    recent_days: int = Field(default=7, ge=1)
    agreement_ending_days: int = Field(default=60, ge=0)
    transferred_in_days: int = Field(default=30, ge=1)
    first_days: int = Field(default=90, ge=1)
    unassigned_workers: tuple[str, ...] = ("", "unassigned", "none", "pending", "-")


class ScheduleSpec(_Strict):
    """How often a duty falls due (``schedules:``): the one schedule that both the
    ``overdue`` alerts and the workers' due lists (:mod:`features.schedule`) read.

    A duty is done by any of ``events`` (e.g. an attended check-in); it is due
    ``every_days`` after it was last done (or after the programme start), the
    interval being that of the programme period the person is in at the day
    asked about: months 1–6, months 7–12, year 2, year 3 (and later).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    events: EventFilter
    every_days: tuple[int, int, int, int]
    zh: str
    en: str

    @model_validator(mode="after")
    def _positive(self) -> ScheduleSpec:
        if min(self.every_days) < 1:
            raise ValueError(f"{self.name}: every interval must be at least one day")
        return self


class AlertSpec(_Strict):
    """One alert: a rule over the events known at as_of, and its bit in ``alert_mask``.

    Rules: ``overdue`` — the ``schedule``'s duty (its ``events``) not done for longer
    than the schedule's interval (``every_days`` for months 1–6, 7–12, year 2,
    year 3 of the programme) plus ``grace_days``, counted from the last such
    event or the programme start (the catalog copies the schedule's ``events`` and
    ``every_days`` into the alert when it loads; an alert never restates them);
    ``recorded_recently`` — such an event *recorded* in the last ``recent_days``
    (the latest by ts is reported, with its value); ``no_contact_since`` — the
    latest ``events`` (a transfer in) has had no contact since (the catalog's
    ``contact``, the same the features count), or the person's worker is an
    "unassigned" marker.

    Quantity rules (controlled medicine; an event's window is by ``ts``: in the
    ``W``-day window when ``as_of − W days ≤ ts``, known before as_of, as for
    features): ``sum_above`` — the ``value``s of ``events`` in the last
    ``window_days`` add up to more than ``above``; ``places_at_least`` — the
    events in the last ``window_days`` name at least ``at_least`` different places
    (the pharmacy of a purchase, :func:`features.contract.split_purchase`);
    ``sharp_rise`` — the quantity in the last ``window_days`` is at least
    ``at_least`` and more than ``factor`` times the quantity of the ``prior_days``
    before that window scaled to ``window_days``, that earlier quantity being more
    than 0 (a first purchase is the other rules' business). Each reports the latest
    such event's ts and the figure (sum, places, or the recent sum).

    ``level`` grades an alert for the pages (1 关注 notice, 2 警示 warning, 3 严重
    serious); alerts without one are not graded.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    bit: int = Field(ge=1)
    rule: Literal[
        "overdue",
        "recorded_recently",
        "no_contact_since",
        "sum_above",
        "places_at_least",
        "sharp_rise",
    ]
    events: EventFilter
    schedule: str | None = None  # overdue: the name of one of the catalog's ``schedules``
    every_days: tuple[int, int, int, int] | None = None
    contact: Literal["contact"] | None = None  # the catalog's one idea of contact
    window_days: int | None = Field(default=None, ge=1, le=3650)
    prior_days: int | None = Field(default=None, ge=1, le=3650)
    above: float | None = Field(default=None, ge=0)
    at_least: float | None = Field(default=None, ge=1)
    factor: float | None = Field(default=None, gt=1)
    level: Literal[1, 2, 3] | None = None
    zh: str
    en: str

    @model_validator(mode="after")
    def _consistent(self) -> AlertSpec:
        needs = {
            "sum_above": {"window_days", "above"},
            "places_at_least": {"window_days", "at_least"},
            "sharp_rise": {"window_days", "prior_days", "at_least", "factor"},
        }.get(self.rule, set())
        for key in ("window_days", "prior_days", "above", "at_least", "factor"):
            if (key in needs) != (getattr(self, key) is not None):
                raise ValueError(f"{self.name}: rule {self.rule} takes {sorted(needs) or 'none'}")
        if (self.rule == "overdue") != (self.schedule is not None):
            raise ValueError(f"{self.name}: `schedule` goes with rule overdue, and only there")
        if (self.rule == "overdue") != (self.every_days is not None):
            raise ValueError(f"{self.name}: `every_days` goes with rule overdue, and only there")
        if (self.rule == "no_contact_since") != (self.contact is not None):
            raise ValueError(f"{self.name}: `contact` goes with rule no_contact_since")
        return self


class CohortFlagSpec(_Strict):
    """One 一批一策 cohort flag and its bit in ``cohort_mask``.

    Rules: ``ends_within`` — the planned end is 0..``agreement_ending_days``
    days away; ``started_within`` — fewer than ``first_days`` days since the
    programme start; ``event_within`` — such an event (ts) in the last
    ``transferred_in_days`` days.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    bit: int = Field(ge=1)
    rule: Literal["ends_within", "started_within", "event_within"]
    events: EventFilter | None = None


class Catalog(_Strict):
    """The parsed catalog. Build with :func:`load_catalog`."""

    catalog_version: str
    periods: Periods
    contact: tuple[EventFilter, ...]
    plan_items: tuple[PlanItem, ...]
    choice_labels: dict[str, dict[str, tuple[str, str]]]
    specs: tuple[FeatureSpec, ...] = Field(alias="features")
    alert_settings: AlertSettings = AlertSettings()
    schedules: tuple[ScheduleSpec, ...] = ()
    alerts: tuple[AlertSpec, ...] = ()
    cohort_flags: tuple[CohortFlagSpec, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _alerts_read_schedules(cls, data: Any) -> Any:
        """An ``overdue`` alert names a schedule; its events and intervals come from there."""
        if not isinstance(data, dict):
            return data
        schedules = {s.get("name"): s for s in data.get("schedules") or () if isinstance(s, dict)}
        alerts = []
        for alert in data.get("alerts") or ():
            if isinstance(alert, dict) and alert.get("schedule") is not None:
                name = alert.get("name")
                if alert["schedule"] not in schedules:
                    raise ValueError(f"{name}: unknown schedule {alert['schedule']!r}")
                found = schedules[alert["schedule"]]
                # a dumped catalog carries the copies; a different value is a second schedule
                same = (
                    alert.get("events") is None
                    or EventFilter.model_validate(alert["events"])
                    == EventFilter.model_validate(found["events"])
                ) and (
                    alert.get("every_days") is None
                    or tuple(alert["every_days"]) == tuple(found["every_days"])
                )
                if not same:
                    raise ValueError(
                        f"{name}: an overdue alert names its schedule and does not restate"
                        " `events` or `every_days` (one schedule, read by alerts and due lists)"
                    )
                alert = {**alert, "events": found["events"], "every_days": found["every_days"]}
            alerts.append(alert)
        return {**data, "alerts": alerts} if "alerts" in data else data

    @model_validator(mode="after")
    def _references(self) -> Catalog:
        if len({s.name for s in self.schedules}) != len(self.schedules):
            raise ValueError("duplicate schedule name")
        for group in (self.alerts, self.cohort_flags):
            bits = [a.bit for a in group]
            if len(set(bits)) != len(bits) or any(b & (b - 1) for b in bits):
                raise ValueError("alert and cohort-flag bits must be distinct powers of two")
            if len({a.name for a in group}) != len(group):
                raise ValueError("duplicate alert or cohort-flag name")
        ids = {p.id for p in self.plan_items}
        names: set[str] = set()
        for spec in self.specs:
            if spec.plan_item is not None and spec.plan_item not in ids:
                raise ValueError(f"{spec.name}: unknown plan item {spec.plan_item!r}")
            if spec.name in names:
                raise ValueError(f"duplicate feature name {spec.name!r}")
            names.add(spec.name)
            if spec.kind in {"person_category", "last_category"}:
                self.choices_of(spec)
        return self

    def count_windows(self) -> tuple[int, ...]:
        """Every finite window a count needs (catalog windows and trend boundaries)."""
        found: set[int] = set()
        for spec in self.specs:
            if spec.kind == "count":
                found.update(int(str(w)) for w in spec.windows if w != "all")
            if spec.kind == "share_trend":
                found.update({spec.recent or 0, (spec.recent or 0) + (spec.prior or 0)})
        return tuple(sorted(found))

    def choices_of(self, spec: FeatureSpec) -> tuple[str, ...]:
        """The contract's choices for a category feature (labels must match exactly)."""
        if spec.kind == "person_category":
            assert spec.column is not None
            col = _PERSON[spec.column]
            key, choices = spec.column, col.choices or col.coded
        else:
            assert isinstance(spec.events, EventFilter) and spec.choices is not None
            key, choices = spec.choices, EVENT_CODED_RESULTS.get(spec.events.types[0], ())
        labels = self.choice_labels.get(key, {})
        if set(labels) != set(choices):
            raise ValueError(f"choice_labels[{key!r}] must name exactly {list(choices)}")
        return choices

    def label_of(self, spec: FeatureSpec, choice: str) -> tuple[str, str]:
        key = spec.column if spec.kind == "person_category" else spec.choices
        assert key is not None
        return self.choice_labels[key][choice]

    def schedule(self, name: str) -> ScheduleSpec:
        """The schedule called ``name`` (KeyError when the catalog has none)."""
        for found in self.schedules:
            if found.name == name:
                return found
        raise KeyError(name)

    def plan_item(self, item_id: str) -> PlanItem:
        return next(p for p in self.plan_items if p.id == item_id)

    def features(self) -> tuple[Feature, ...]:
        """Every output column, in the engine's order (after person_id, as_of)."""
        return _expand(self)


@dataclass(frozen=True)
class Feature:
    """One output column with the words that explain it."""

    name: str
    spec: str
    family: str
    kind: str
    window: Window | None
    format: Format
    actionable: bool
    plan_item: str | None
    zh: str
    en: str
    zh_off: str | None = None
    en_off: str | None = None

    def describe(self, value: float, lang: Literal["zh", "en"] = "zh") -> str:
        """The description filled with ``value`` (e.g. 在过去30天内漏报到2次)."""
        template = self.zh if lang == "zh" else self.en
        if self.format == "flag" and not value and self.zh_off and self.en_off:
            template = self.zh_off if lang == "zh" else self.en_off
        return template.format(value=_format(value, self.format))


def _format(value: float, fmt: Format) -> str:
    if fmt == "percent":
        return f"{value * 100:+.0f}%"
    if fmt == "float1":
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(int(round(value)))


def _expand(cat: Catalog) -> tuple[Feature, ...]:
    out: list[Feature] = []
    for spec in cat.specs:

        def add(
            name: str,
            zh: str,
            en: str,
            window: Window | None = None,
            fmt: Format | None = None,
            spec: FeatureSpec = spec,
        ) -> None:
            out.append(
                Feature(
                    name,
                    spec.name,
                    spec.family,
                    spec.kind,
                    window,
                    fmt or spec.format,
                    spec.actionable,
                    spec.plan_item,
                    zh,
                    en,
                )
            )

        if spec.kind in {"person_category", "last_category"}:
            for choice in cat.choices_of(spec):
                zh, en = cat.label_of(spec, choice)
                add(
                    f"{spec.name}_{choice}",
                    spec.zh.replace("{choice}", zh),
                    spec.en.replace("{choice}", en),
                    fmt="flag",
                )
            optional = spec.kind == "last_category" or not _PERSON[spec.column or ""].required
            if optional:
                suffix = "none" if spec.kind == "last_category" else "unknown"
                add(
                    f"{spec.name}_{suffix}",
                    spec.missing_zh or "",
                    spec.missing_en or "",
                    fmt="flag",
                )
            continue
        if spec.kind in _WINDOWED:
            for w in spec.windows:
                zh_p = cat.periods.zh_all if w == "all" else cat.periods.zh.format(days=w)
                en_p = cat.periods.en_all if w == "all" else cat.periods.en.format(days=w)
                suffix = "" if len(spec.windows) == 1 and w == "all" else f"_{_wname(w)}"
                add(
                    f"{spec.name}{suffix}",
                    spec.zh.replace("{period}", zh_p),
                    spec.en.replace("{period}", en_p),
                    window=w,
                )
        elif spec.kind == "state_now":
            out.append(
                Feature(
                    spec.name,
                    spec.name,
                    spec.family,
                    spec.kind,
                    None,
                    "flag",
                    spec.actionable,
                    spec.plan_item,
                    spec.zh,
                    spec.en,
                    spec.missing_zh,
                    spec.missing_en,
                )
            )
        else:
            add(spec.name, spec.zh, spec.en)
        if spec.missing.flag:
            add(f"{spec.name}_imp", spec.missing_zh or "", spec.missing_en or "", fmt="flag")
    return tuple(out)


def _wname(w: Window) -> str:
    return "all" if w == "all" else f"{w}d"


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Parse and check the catalog YAML (cached per path)."""
    with open(path, encoding="utf-8") as fh:
        return Catalog.model_validate(yaml.safe_load(fh))
