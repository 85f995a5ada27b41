"""Serving settings: the shared :class:`common.settings.Settings` plus API knobs.

Contract: :func:`get_settings` builds one :class:`ServingSettings` from the
environment (``SUNFLOWER_*``), explicit overrides winning. Nothing here
connects, creates folders or reads the environment at import time; the app and
the CLI receive the object and pass it on.
"""

from __future__ import annotations

from pydantic import Field

from common.settings import Settings


class ServingSettings(Settings):
    """Where state lives (inherited) and how the API behaves."""

    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a resolved bearer token is cached in memory; a revoked "
        "token stops working within this time.",
    )
    page_max: int = Field(default=200, ge=1, description="Largest page a list returns.")
    db_busy_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long a request waits for a database lock (SQLite busy timeout, "
        "PostgreSQL lock_timeout) before it answers 503 with Retry-After.",
    )
    max_run_age_days: int = Field(
        default=2,
        ge=0,
        description="/readyz reports 'degraded' when the latest published run's date is more "
        "than this many days before today (the daily job has not run).",
    )
    require_models: bool = Field(
        default=False,
        description="Refuse to start when a champion cannot be loaded (default: start, "
        "serve stored lists, and report not-ready on /readyz).",
    )


def get_settings(**overrides: object) -> ServingSettings:
    """Serving settings from the environment, with explicit overrides winning."""
    return ServingSettings(**overrides)  # type: ignore[arg-type]
