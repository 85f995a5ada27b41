"""Request and response schemas of the API (what OpenAPI shows, with examples).

Contract: these are the API's shapes, separate from the database rows and the
frames of the job. The busiest read routes return JSON that the scoring job
already serialised from these same shapes (``scores.item``,
``explanations.body``), so the route does not rebuild it per request; tests
validate those bodies against these models.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from features.config import Outcome
from features.contract import with_zone

#: A stored time (naive, Asia/Shanghai) written with its offset: RFC 3339 date-time.
ZonedTime = Annotated[
    dt.datetime,
    PlainSerializer(lambda v: with_zone(v).isoformat(), return_type=str, when_used="json"),
]

BandCode = Literal["low", "medium", "high", "very_high"]
AlertKind = Literal[
    "overdue_check_in",
    "overdue_test",
    "positive_test",
    "refused_test",
    "medicine_purchase",
    "medicine_quantity_7d",
    "medicine_quantity_30d",
    "medicine_pharmacies",
    "medicine_sharp_rise",
    "transfer_no_worker",
]
CohortKind = Literal["agreement_ending", "transferred_in_recently", "first_90_days"]

#: Paging bounds of every paged route (and the front door): outside them is a 422 naming
#: the parameter. ``limit`` is 1..PAGE_MAX, ``offset`` 0..OFFSET_MAX (far past any list,
#: far below the 64-bit integers the databases take).
PAGE_MAX = 1000
OFFSET_MAX = 10_000_000

#: Text a person types into the API (a note): no control characters but tab and line
#: breaks (PostgreSQL refuses NUL; ESC and the like have no place in a note).
TYPED_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
#: A short code sent to the API: no control characters at all.
CODE_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*$"


class Band(BaseModel):
    level: int = Field(ge=1, le=4, description="1 low … 4 very high")
    code: BandCode
    zh: str
    en: str


class ModelRef(BaseModel):
    name: str = Field(examples=["sunflower-relapse"])
    version: str = Field(examples=["3"])
    trained_at: str | None = None


class Driver(BaseModel):
    feature: str = Field(examples=["checkins_missed_90d"])
    value: float | None = Field(examples=[2.0])
    contribution: float = Field(description="SHAP contribution (log-odds); > 0 raises the risk")
    direction: Literal["raises", "lowers"]
    sentence_zh: str = Field(examples=["在过去90天内漏报到2次"])
    sentence_en: str = Field(examples=["missed 2 check-ins in the last 90 days"])
    actionable: bool
    plan_item: str | None = Field(default=None, examples=["home_visit"])


class PlanItem(BaseModel):
    id: str = Field(examples=["home_visit"])
    zh: str = Field(examples=["家访"])
    en: str = Field(examples=["home visit"])


class OtherOutcome(BaseModel):
    outcome: Outcome
    p: float
    band: Band


class ListItem(BaseModel):
    """One person on a risk list (stored by the scoring job)."""

    person_id: str = Field(examples=["p-000123"])
    worker_id: str
    district: str
    town: str
    outcome: Outcome
    p: float = Field(
        ge=0,
        le=1,
        description=(
            "calibrated probability that the outcome is recorded within the next "
            "horizon_days (the run's models[outcome].horizon_days; 90 by default), "
            "or until the planned end of the agreement if that comes first, while the "
            "person is under this district's supervision (labels.yaml, docs/models.md)"
        ),
    )
    band: Band
    rank_caseload: int
    caseload_size: int
    rank_town: int
    town_size: int
    change: float | None = Field(description="p minus the previous published run's p")
    previous_band: int | None
    top_driver: Driver | None
    alerts: list[AlertKind]
    cohorts: list[CohortKind]
    other_outcomes: list[OtherOutcome]
    model: ModelRef


class RiskList(BaseModel):
    run_id: int
    as_of: dt.date
    outcome: Outcome
    scope: str = Field(examples=["worker:w-1"])
    total: int
    limit: int
    offset: int
    items: list[ListItem]


class Explanation(BaseModel):
    """Why a score is what it is: identical to what the list showed for that run."""

    run_id: int | None = Field(description="the stored run; null for what-if and ad-hoc")
    as_of: dt.date | None
    person_id: str | None
    outcome: Outcome
    p: float
    band: Band
    base_value: float = Field(description="the model's average log-odds before contributions")
    drivers: list[Driver]
    plan_items: list[PlanItem]
    model: ModelRef


class Alert(BaseModel):
    kind: AlertKind
    since: ZonedTime | None
    zh: str
    en: str


class PersonSummary(BaseModel):
    person_id: str
    worker_id: str
    district: str
    town: str
    program: str
    program_start: dt.date
    program_end: dt.date
    run_id: int | None
    as_of: dt.date | None
    scores: list[ListItem] = Field(description="current scores, both outcomes")
    alerts: list[Alert]


class HistoryPoint(BaseModel):
    as_of: dt.date
    run_id: int
    outcome: Outcome
    p: float
    band: int
    rank_caseload: int
    model_version: str


class TimelineEntry(BaseModel):
    at: ZonedTime
    kind: Literal["event", "action"]
    type: str = Field(examples=["check_in", "home_visit", "plan_item"])
    result: str | None = None
    value: float | None = None
    source: str | None = None
    recorded_at: ZonedTime | None = None
    by: str | None = Field(default=None, description="account that recorded an action")
    plan_item: str | None = None
    status: str | None = None
    agrees_with_score: bool | None = None
    note: str | None = None
    id: str


class Timeline(BaseModel):
    person_id: str
    items: list[TimelineEntry]


class ActionIn(BaseModel):
    """What a worker did, and whether they agree with the score."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "plan_item",
                    "plan_item": "home_visit",
                    "status": "done",
                    "outcome": "relapse",
                    "agrees_with_score": True,
                    "note": "家访完成，情况稳定",
                }
            ]
        },
    )

    kind: Literal["plan_item", "home_visit", "referral", "feedback", "other"]
    plan_item: str | None = Field(default=None, max_length=64, pattern=CODE_TEXT)
    status: Literal["done", "not_done", "not_suitable"] | None = None
    outcome: Outcome | None = None
    agrees_with_score: bool | None = None
    note: str | None = Field(default=None, max_length=2000, pattern=TYPED_TEXT)


class ActionOut(ActionIn):
    model_config = ConfigDict(extra="forbid")

    id: int
    person_id: str
    at: ZonedTime
    by: str
    role: str
    run_id: int | None


class WhatIfIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"changes": {"employed_now": 1, "home_visits_30d": 2}, "outcome": None}]
        },
    )

    changes: dict[str, float] = Field(
        description="actionable feature -> new value (see GET …/what-if/inputs)"
    )
    outcome: Outcome | None = Field(default=None, description="one outcome, or both when null")
    date: dt.date | None = None


class WhatIfResult(BaseModel):
    outcome: Outcome
    before: Explanation
    after: Explanation
    change: float


class WhatIfOut(BaseModel):
    person_id: str
    run_id: int
    as_of: dt.date
    changes: dict[str, float]
    results: list[WhatIfResult]
    stored: Literal[False] = False


class WhatIfInput(BaseModel):
    feature: str
    value: float
    zh: str
    en: str
    format: str
    plan_item: str | None


class WhatIfInputs(BaseModel):
    person_id: str
    run_id: int
    inputs: list[WhatIfInput]


class FeatureRowIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"features": {"checkins_missed_90d": 2, "employed_now": 0}}]
        },
    )

    features: dict[str, float] = Field(description="every feature the champion uses, by name")
    outcomes: list[Outcome] | None = None


class PersonHistoryIn(BaseModel):
    """A person and their history in the input contract (DESIGN §2), scored as of a date."""

    model_config = ConfigDict(extra="forbid")

    person: dict[str, Any] = Field(
        examples=[
            {
                "person_id": "p-demo",
                "sex": "M",
                "birth_year": 1988,
                "district": "示例区",
                "town": "东镇",
                "worker_id": "w-1",
                "program": "community_rehab",
                "program_start": "2024-03-01",
                "program_end": "2027-02-28",
                "primary_drug": "methamphetamine",
            }
        ]
    )
    events: list[dict[str, Any]] = Field(
        default_factory=list,
        examples=[
            [
                {
                    "event_id": "e-1",
                    "person_id": "p-demo",
                    "ts": "2025-05-02T09:00:00",
                    "type": "check_in",
                    "result": "missed",
                }
            ]
        ],
    )
    as_of: dt.date
    outcomes: list[Outcome] | None = None


class AdhocOut(BaseModel):
    person_id: str | None
    as_of: dt.date | None
    results: list[Explanation]
    stored: Literal[False] = False


class Rejection(BaseModel):
    file: str
    row: int = Field(description="1-based row of that table in the request; 0 = whole table")
    column: str
    code: str
    reason: str


class Counts(BaseModel):
    received: int
    stored: int
    already: int
    rejected: int
    duplicates_dropped: int


class IngestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    persons: list[dict[str, Any]] | None = None
    events: list[dict[str, Any]] | None = None


class IngestOut(BaseModel):
    ok: bool
    run_id: int | None
    persons: Counts
    events: Counts
    rejections: list[Rejection]


class ModelInfo(BaseModel):
    outcome: Outcome
    loaded: bool
    model_name: str | None
    version: str | None
    trained_at: str | None
    n_features: int | None
    metrics: dict[str, Any]
    loaded_at: ZonedTime
    error: str | None


class ModelsOut(BaseModel):
    models: list[ModelInfo]
    bands: dict[str, list[float]] = Field(description="lower bounds of bands 2, 3 and 4")


class ReloadOut(BaseModel):
    before: list[ModelInfo]
    after: list[ModelInfo]


class RunInfo(BaseModel):
    run_id: int
    as_of: dt.date
    status: Literal["published", "replaced"]
    n_persons: int
    models: dict[str, Any]
    started_at: ZonedTime
    finished_at: ZonedTime | None
    seconds: float | None


class Aggregates(BaseModel):
    run_id: int
    as_of: dt.date
    scope: str
    persons: int
    by_outcome: dict[str, dict[str, Any]]
    alerts: dict[str, int]


class Group(BaseModel):
    driver: str = Field(examples=["checkins_missed"])
    zh: str
    en: str
    plan_item: str | None
    count: int
    person_ids: list[str]


class Groups(BaseModel):
    run_id: int
    as_of: dt.date
    outcome: Outcome
    scope: str
    groups: list[Group]


class TownKpi(BaseModel):
    district: str
    town: str
    ordered: int
    active: int
    execution_rate: float | None
    lost_contact: int
    status_counts: dict[str, int]
    employed: int
    employment_rate: float | None
    workers: int
    people_per_worker: float | None
    target_people_per_worker: int


class Kpis(BaseModel):
    run_id: int
    as_of: dt.date
    towns: list[TownKpi]


class AuditEntry(BaseModel):
    id: int
    at: ZonedTime
    user_id: int | None
    username: str
    role: str
    action: str
    person_id: str | None
    detail: dict[str, Any] | None


class AuditPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AuditEntry]


class Me(BaseModel):
    username: str
    role: str
    worker_id: str | None
    district: str | None
    town: str | None


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool = Field(description="database answers and both champions are loaded")
    #: ready; degraded = ready but the latest run is stale (or there is none); not_ready
    status: Literal["ready", "degraded", "not_ready"]
    database: bool
    models: list[ModelInfo]
    latest_run: dt.date | None
    latest_run_age_days: int | None = Field(description="today (Asia/Shanghai) minus latest_run")
    reasons: list[str] = Field(default_factory=list)


class ErrorField(BaseModel):
    field: str = Field(examples=["query.limit"])
    message: str


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str
    fields: list[ErrorField] = []


class ErrorOut(BaseModel):
    error: ErrorBody


# ---- issue 17: due lists, medicine warnings, placement bases, targets (docs/duties.md)

DutyKind = Literal["check_in", "drug_test", "hair_test", "home_visit"]
DueStatus = Literal["escalated", "overdue", "due"]


class DueItem(BaseModel):
    """One duty of one person: due within 7 days, or overdue."""

    person_id: str = Field(examples=["p-000123"])
    worker_id: str
    town: str
    duty: DutyKind
    zh: str = Field(examples=["报到"])
    en: str = Field(examples=["check-in"])
    last_done: ZonedTime | None = Field(description="when it was last done; null: never")
    due: dt.date
    days_late: int = Field(description="as_of - due in days; <= 0: not late yet")
    status: DueStatus = Field(
        description="due: within the week; overdue: 1-7 days late; escalated: more than 7 "
        "days late (the catalog's overdue alert)"
    )


class DueList(BaseModel):
    run_id: int
    as_of: dt.date
    scope: str = Field(examples=["worker:w-1"])
    counts: dict[DueStatus, int]
    items: list[DueItem]


class MedicineAlert(BaseModel):
    kind: AlertKind
    level: int = Field(ge=1, le=3, description="1 notice, 2 warning, 3 serious")
    since: ZonedTime | None
    zh: str
    en: str


class Purchase(BaseModel):
    ts: ZonedTime
    medicine: str | None = Field(examples=["codeine_syrup"])
    pharmacy: str | None = Field(examples=["ph-0101"])
    quantity: float | None = Field(description="packages")


class MedicineWarning(BaseModel):
    person_id: str
    worker_id: str
    level: int = Field(ge=1, le=3)
    alerts: list[MedicineAlert]
    purchases: list[Purchase] = Field(description="the last 30 days, newest first")


class MedicineWarnings(BaseModel):
    run_id: int
    as_of: dt.date
    scope: str
    people: list[MedicineWarning]


class BaseRow(BaseModel):
    base_id: str = Field(examples=["base-01-A"])
    name: str = Field(examples=["基地A"])
    district: str
    town: str
    placed: int = Field(description="people placed in the rolling window")
    qualifying: int = Field(description="of them, insured at least 12 months")
    insured_months: float
    eligible: bool = Field(description="at least 5 qualifying")
    lump_sum_paid_on: dt.date | None
    lump_sum_due_yuan: float
    insurance_subsidy_yuan: float
    total_due_yuan: float


class PlacedPerson(BaseModel):
    base_id: str
    person_id: str
    first_placed: ZonedTime
    placements: int
    insured_months: float
    qualifies: bool
    insurance_subsidy_yuan: float


class BaseReport(BaseModel):
    run_id: int
    as_of: dt.date
    window_start: dt.date
    bases: list[BaseRow]
    people: list[PlacedPerson] = Field(description="only people in the caller's scope")


KpiName = Literal[
    "execution_rate", "lost_contact", "abstinent_3y", "employment_rate", "people_per_worker"
]


class TargetRow(BaseModel):
    district: str
    town: str | None = Field(description="null: the district's total")
    kpi: KpiName
    value: float | None
    rule: Literal["at_least", "at_most", "growth"]
    target: float | None = Field(description="null: a growth target without a baseline")
    baseline: float | None
    met: bool | None


class Targets(BaseModel):
    run_id: int
    as_of: dt.date
    rows: list[TargetRow]
