"""The FastAPI application: ``create_app(settings)``.

Contract: nothing happens at import. :func:`create_app` builds an app whose
``lifespan`` opens the service state once (database, migrations, champions
from the registry alias, audit writer) and closes it at shutdown; SIGHUP (when
the app runs in the main thread, as under ``sunflower serve``) reloads the
champions like ``POST /api/v1/admin/reload``. Routes live under ``/api/v1``;
``/healthz``, ``/readyz`` and ``/metrics`` at the root; OpenAPI at
``/api/v1/openapi.json`` with the reference page at ``/docs`` (rendered here,
no CDN). Tests may pass a champion ``loader`` instead of the MLflow registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator

from fastapi import FastAPI

from serving.api.errors import install as install_errors
from serving.api.front_door import FrontDoor
from serving.api.guard import ControlCharacters, SafeHeaders
from serving.api.request_metrics import Metrics, MetricsMiddleware
from serving.api.routes import duties, ingest, lists, persons, scoring, system
from serving.api.state import open_state
from serving.champions import Loader
from serving.logs import install as install_log_filter
from serving.settings import ServingSettings, get_settings
from serving.web import router as web_pages

API = "/api/v1"
log = logging.getLogger("sunflower.serving")

DESCRIPTION = """
Sunflower (向阳花) scores every person in community drug rehabilitation each day
for **relapse** (复吸) and **loss of contact** (脱管失控), and explains why.

* Authenticate with `Authorization: Bearer <token>` (`sunflower users token NAME`).
* Roles: `worker` (own caseload), `supervisor` (town or district), `model_owner`
  (models and aggregates), `integrator` (ingest, ad-hoc scoring), `admin`.
* A person outside your scope is a 404, exactly like one that does not exist.
* Every person-level read, explanation, what-if and export is audited.
* Errors are `{"error": {"code", "message", "fields": [{"field", "message"}]}}`.
"""


def create_app(settings: ServingSettings | None = None, loader: Loader | None = None) -> FastAPI:
    """The Sunflower API on ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    install_log_filter()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await asyncio.to_thread(open_state, settings, loader)
        app.state.service = state
        # Everything loaded so far (libraries, models, catalog) lives as long as the process:
        # keep it out of the collector's full passes, which otherwise stall requests for
        # tens of milliseconds (the p99 at 500 req/s).
        gc.collect()
        gc.freeze()
        for m in state.champions.info():
            metrics.models.labels(m["outcome"], m["version"] or "").set(int(m["loaded"]))
        loop = asyncio.get_running_loop()
        hup = False
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(system.reload_models(state))
            )
            hup = True
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            await asyncio.to_thread(state.close)

    app = FastAPI(
        title="Sunflower (向阳花) risk early-warning API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{API}/openapi.json",
        docs_url=None,  # /docs is a page of ours (serving.web.pages_docs): no CDN script
        redoc_url=None,
    )
    app.state.metrics = metrics
    install_errors(app)
    for router in (
        lists.router,
        persons.router,
        scoring.router,
        ingest.router,
        duties.router,
        system.api,
    ):
        app.include_router(router, prefix=API)
    app.include_router(system.ops)
    app.include_router(web_pages)
    app.add_middleware(FrontDoor, prefix=API)  # the hot routes, without FastAPI's overhead
    app.add_middleware(ControlCharacters)  # in front of the front door and every route
    app.add_middleware(SafeHeaders)  # no-store, nosniff, CSP on every answer
    app.add_middleware(MetricsMiddleware, metrics=metrics, prefix=API)
    return app
