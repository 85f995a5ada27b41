"""Helpers the route modules share: runs, JSON assembly, query models."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import orjson
from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from features.config import Outcome
from serving import queries
from serving.api.errors import ApiError
from serving.api.schemas import OFFSET_MAX, PAGE_MAX, AlertKind, BandCode, CohortKind


class ListQuery(BaseModel):
    """Filters and paging shared by every risk list."""

    model_config = ConfigDict(extra="forbid")

    date: Annotated[dt.date | None, Field(description="run date; default the latest")] = None
    outcome: Annotated[Outcome, Field(description="sort by this outcome's risk")] = "relapse"
    band: Annotated[list[BandCode] | None, Field(description="keep these bands")] = None
    alert: Annotated[AlertKind | None, Field(description="only people with this alert")] = None
    any_alert: Annotated[bool, Field(description="only people with any alert")] = False
    cohort: Annotated[CohortKind | None, Field(description="only this 一批一策 cohort")] = None
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 25
    offset: Annotated[int, Field(ge=0, le=OFFSET_MAX)] = 0
    order: Annotated[
        Literal["rank", "priority"],
        Field(
            description="rank: by the outcome's rank; priority: who first today — the higher "
            "band of both outcomes, then an alert, then the probability as a multiple of its "
            "outcome's usual rate (the pages' order)"
        ),
    ] = "rank"


ListParams = Annotated[ListQuery, Query()]


class ExportQuery(ListQuery):
    """A list's filters plus its scope: a caseload, or a district (and town)."""

    order: Annotated[Literal["rank"], Field(description="exports follow the rank")] = "rank"
    worker_id: str | None = None
    district: str | None = None
    town: str | None = None


ExportParams = Annotated[ExportQuery, Query()]


def need_run(conn: Connection, day: dt.date | None) -> queries.Run:
    run = queries.run_for(conn, day)
    if run is None:
        what = f"for {day}" if day else "yet"
        raise ApiError(404, "no_run", f"no published scoring run {what}; run `sunflower score`")
    return run


def list_response(head: dict[str, Any], key: str, raw_items: list[str]) -> Response:
    """``head`` plus a list of already-serialised JSON objects under ``key``."""
    start = orjson.dumps(head)[:-1]
    items = ",".join(raw_items).encode()
    return Response(
        start + b',"' + key.encode() + b'":[' + items + b"]}", media_type="application/json"
    )
