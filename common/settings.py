"""Settings: one pydantic-settings object, built by :func:`get_settings`.

Contract: nothing here connects, creates folders or reads the environment at
import time. ``SUNFLOWER_HOME`` (default ``./var``) holds all local state;
``SUNFLOWER_DATABASE_URL`` and ``MLFLOW_TRACKING_URI`` override their parts.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Sunflower keeps its state. Build with :func:`get_settings`."""

    model_config = SettingsConfigDict(env_prefix="SUNFLOWER_", extra="ignore")

    home: Path = Field(default=Path("var"), description="Folder for all local state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the service database; default SQLite."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "SUNFLOWER_MLFLOW_TRACKING_URI"),
        description="MLflow tracking URI; default a sqlite store under home.",
    )

    @property
    def db_url(self) -> str:
        """The service database URL (SQLite file under home unless overridden)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'sunflower.db').resolve()}"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI (sqlite backend under home unless overridden)."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        """Local folder for MLflow artifacts."""
        return (self.home / "mlartifacts").resolve()

    @property
    def reports_dir(self) -> Path:
        """Folder for machine-readable reports (ingest rejections, manifests)."""
        return (self.home / "reports").resolve()


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
