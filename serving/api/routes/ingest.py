"""Ingest over HTTP: persons and events in the input contract, same rules as file ingest.

Contract: the JSON rows go through :func:`features.ingest.ingest_frames` — the
same validation, the same one-transaction store, the same idempotency on ids
and the same rejection report (file, row, column, code, reason; ``row`` is the
1-based position in the request's list). Values arrive as a CSV file would
give them (:func:`features.validate.frame_from_records`): a JSON object or list
where one value belongs is rejected (``not_scalar``), never stored as its text.
200 when every row was stored or already there; 422 with the full report
when any row was rejected (the good rows are still stored, as with files).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from features.contract import EVENT_COLUMN_NAMES, PERSON_COLUMN_NAMES
from features.ingest import ingest_frames
from features.validate import frame_from_records
from serving.api.deps import DataSender, StateDep
from serving.api.errors import ERROR_RESPONSES, ApiError, json_response
from serving.api.schemas import ErrorOut, IngestIn, IngestOut

router = APIRouter(tags=["ingest"], responses=ERROR_RESPONSES)
MAX_ROWS = 200_000


@router.post(
    "/ingest",
    response_model=IngestOut,
    summary="Send persons and events",
    responses={
        413: {"model": ErrorOut, "description": f"more than {MAX_ROWS:,} rows in one request"},
        422: {
            "model": IngestOut | ErrorOut,
            "description": "some rows were rejected (the report, good rows stored), or the "
            "body is not of the documented shape (an error naming the field)",
        },
    },
)
def ingest(body: IngestIn, who: DataSender, state: StateDep) -> Response:
    """Validate and store; idempotent on person_id and event_id."""
    if body.persons is None and body.events is None:
        raise ApiError(
            422,
            "invalid_request",
            "send persons, events or both",
            [{"field": "body", "message": "persons and events are both missing"}],
        )
    n = len(body.persons or []) + len(body.events or [])
    if n > MAX_ROWS:
        raise ApiError(413, "too_large", f"{n} rows; send at most {MAX_ROWS} per request")
    result = ingest_frames(
        state.engine,
        persons_raw=frame_from_records(body.persons, PERSON_COLUMN_NAMES)
        if body.persons is not None
        else None,
        events_raw=frame_from_records(body.events, EVENT_COLUMN_NAMES)
        if body.events is not None
        else None,
        persons_file="persons",
        events_file="events",
        source=f"api:{who.username}",
        reports_dir=state.settings.reports_dir,
    )
    out = {
        "ok": result.ok,
        "run_id": result.run_id,
        "persons": vars(result.persons),
        "events": vars(result.events),
        "rejections": result.rejections.astype({"row": "int64"}).to_dict(orient="records"),
    }
    return json_response(
        IngestOut.model_validate(out).model_dump(), status_code=200 if result.ok else 422
    )
