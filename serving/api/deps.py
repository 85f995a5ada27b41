"""Typed dependencies: the service state, the caller and their role.

Contract: ``StateDep`` is the :class:`serving.api.state.ServiceState`; ``UserDep``
the authenticated :class:`serving.auth.Principal` (401 without a valid bearer
token); :func:`require` narrows to roles (403 otherwise); ``PersonReader``
(worker, supervisor, admin), ``AggregateReader`` (supervisor, model_owner,
admin), ``DataSender`` (integrator, admin), ``Admin``. All are ``async`` so
the hot routes never hop to a thread pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.api.errors import ApiError
from serving.api.state import ServiceState
from serving.auth import (
    ADMINS,
    AGGREGATE_READERS,
    DATA_SENDERS,
    PERSON_READERS,
    SCORERS,
    Principal,
    Role,
)

_bearer = HTTPBearer(auto_error=False, description="token from `sunflower users token`")


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def current_user(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
    who = state.tokens.resolve(credentials.credentials)
    if who is None:
        raise ApiError(401, "unauthorized", "unknown, revoked or expired token")
    return who


UserDep = Annotated[Principal, Depends(current_user)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    allowed = ", ".join(roles)

    async def check(who: UserDep) -> Principal:
        if who.role not in roles:
            raise ApiError(403, "forbidden", f"role {who.role} may not use this; needs {allowed}")
        return who

    return check


PersonReader = Annotated[Principal, Depends(require(*PERSON_READERS))]
AggregateReader = Annotated[Principal, Depends(require(*AGGREGATE_READERS))]
DataSender = Annotated[Principal, Depends(require(*DATA_SENDERS))]
Scorer = Annotated[Principal, Depends(require(*SCORERS))]
Admin = Annotated[Principal, Depends(require(*ADMINS))]
