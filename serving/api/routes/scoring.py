"""Ad-hoc scoring for integrators and tests, in two forms; nothing is stored but an audit line.

Contract:

* ``POST /score/features`` — **one supplied feature row**: the model's features
  by name (as listed by ``GET /models``), every one present, finite numbers.
  This is the fast path (no pandas; see :mod:`serving.api.adhoc`) and the form the
  speed target of issue 6 is about; :mod:`serving.api.front_door` answers
  well-formed requests of it without FastAPI, with the same function
  (:func:`serving.api.readers.score_features`).
* ``POST /score/history`` — **a person and their history in the input
  contract** (DESIGN §2), validated like file ingest and turned into
  point-in-time features at ``as_of`` by the feature engine (pandas, in a
  worker thread), then scored exactly like a feature row.

Both score with the loaded champions and explain with the daily job's
explainer (same drivers, sentences and plan items); bad input is a 422 naming
each field (``body.features.<name>``, ``body.person.<column>``,
``body.events[i].<column>``); both append an audit line (``score_features``,
``score_history`` with the person id) and await its commit before answering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import Response

from features.config import OUTCOMES
from models.champion import ChampionLike
from serving.api import readers
from serving.api.adhoc import FieldErrors, features_from_history, one_row, score_row
from serving.api.deps import Scorer, StateDep
from serving.api.errors import ERROR_RESPONSES, ApiError
from serving.api.schemas import AdhocOut, FeatureRowIn, PersonHistoryIn
from serving.api.state import ServiceState
from serving.audit import Entry
from serving.champions import ModelsNotReady

router = APIRouter(prefix="/score", tags=["ad-hoc scoring"], responses=ERROR_RESPONSES)


def _champions(state: ServiceState, outcomes: Sequence[str] | None) -> list[ChampionLike]:
    try:
        names = outcomes or OUTCOMES
        return [state.champions.get(o) for o in dict.fromkeys(names)]
    except ModelsNotReady as exc:
        raise ApiError(503, "models_not_ready", str(exc)) from exc


@router.post("/features", response_model=AdhocOut, summary="Score one supplied feature row")
async def score_features(body: FeatureRowIn, who: Scorer, state: StateDep) -> Response:
    """Probability, band and drivers for one row of model features (names as in /models).

    The fast form: no feature engine, no pandas. Every feature of the champion
    must be given; an unknown, missing or non-finite one is a 422 naming it.
    """
    payload = await readers.score_features(state, who, body.features, body.outcomes)
    return Response(payload, media_type="application/json")


@router.post("/history", response_model=AdhocOut, summary="Score a person and their history")
async def score_history(body: PersonHistoryIn, who: Scorer, state: StateDep) -> dict[str, Any]:
    """The person and events in the input contract, validated like file ingest.

    Features are built as of ``as_of`` from the supplied events only (nothing
    is read from or written to the service's data), then scored like a feature row.
    """
    champions = _champions(state, body.outcomes)
    try:
        frame = await asyncio.to_thread(features_from_history, body.person, body.events, body.as_of)
    except FieldErrors as exc:
        raise ApiError(
            422, "invalid_request", "the supplied history breaks the input contract", exc.fields
        ) from exc
    pid = str(body.person.get("person_id"))
    results = []
    for champ in champions:
        x = np.ascontiguousarray(frame[champ.feature_names].to_numpy(dtype="float64")[0])
        scored = score_row(champ, await one_row(champ), x)
        results.append({"run_id": None, "as_of": body.as_of, "person_id": pid, **scored})
    await state.audit.record(Entry(who, "score_history", pid))
    return {"person_id": pid, "as_of": body.as_of, "results": results}
