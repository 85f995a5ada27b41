"""Alembic environment for the input tables (persons, events, ingest runs).

The engine comes from ``config.attributes['engine']`` (see
:func:`features.store.migrate`); the version table is the layer's own, so the
serving layer can keep a separate migration history in the same database.
"""

from __future__ import annotations

from alembic import context

from features.store import metadata

config = context.config
engine = config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.get_main_option("version_table"),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
