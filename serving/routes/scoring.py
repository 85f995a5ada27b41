"""Ad-hoc scoring for integrators and tests: a feature row, or a person with history.

Contract: both routes score with the loaded champions, explain with the same
code as the daily job, and store nothing but an audit line. The feature-row
route is the fast path (no pandas); the history route builds features with
the feature engine, so it runs in the thread pool.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import Response

from serving import hot
from serving.adhoc import FieldErrors, features_from_history
from serving.audit import Entry, append
from serving.champions import ChampionLike, ModelsNotReady
from serving.deps import Scorer, StateDep
from serving.errors import ERROR_RESPONSES, ApiError
from serving.explain import score_rows
from serving.schemas import AdhocOut, FeatureRowIn, PersonHistoryIn
from serving.state import ServiceState

router = APIRouter(prefix="/score", tags=["ad-hoc scoring"], responses=ERROR_RESPONSES)


def _champions(state: ServiceState, outcomes: Sequence[str] | None) -> list[ChampionLike]:
    try:
        names = outcomes or ["relapse", "loss_of_contact"]
        return [state.champions.get(o) for o in dict.fromkeys(names)]
    except ModelsNotReady as exc:
        raise ApiError(503, "models_not_ready", str(exc)) from exc


@router.post("/features", response_model=AdhocOut, summary="Score one feature row")
async def score_features(body: FeatureRowIn, who: Scorer, state: StateDep) -> Response:
    """Probability, band and drivers for a row of model features (names as in /models)."""
    payload = await hot.score_features(state, who, body.features, body.outcomes)
    return Response(payload, media_type="application/json")


@router.post("/history", response_model=AdhocOut, summary="Score a person and their history")
def score_history(body: PersonHistoryIn, who: Scorer, state: StateDep) -> dict:
    """The person and events in the input contract, validated like file ingest."""
    champions = _champions(state, body.outcomes)
    try:
        frame = features_from_history(body.person, body.events, body.as_of)
    except FieldErrors as exc:
        raise ApiError(
            422, "invalid_request", "the supplied history breaks the input contract", exc.fields
        ) from exc
    pid = str(body.person.get("person_id"))
    results = []
    for champ in champions:
        X = frame[champ.feature_names].to_numpy(dtype="float64")
        _, _, bodies = score_rows(champ, X)
        results.append({"run_id": None, "as_of": body.as_of, "person_id": pid, **bodies[0]})
    with state.engine.begin() as conn:
        append(conn, [Entry(who, "score_history", pid)])
    return {"person_id": pid, "as_of": body.as_of, "results": results}
