"""Alembic environment for the serving tables (own version table).

The engine comes from ``config.attributes['engine']`` (see
:func:`serving.db.migrate`); the input tables keep their own history under
``alembic_version_features``.
"""

from __future__ import annotations

from alembic import context

from serving.db import metadata

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
