"""The SQLAlchemy tables the code uses equal what the migrations create (issue 13, habit 4).

alembic's autogenerate comparison runs on a fresh SQLite database migrated to
head: no table, column, nullability, index or type may differ between
``features.store.metadata`` + ``serving.db.metadata`` and the migrated schema.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from features.store import make_engine
from features.store import metadata as input_tables
from serving.db import metadata as serving_tables
from serving.db import migrate


def test_tables_equal_the_migrated_schema(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    migrate(engine)
    both = sa.MetaData()
    for table in (*input_tables.tables.values(), *serving_tables.tables.values()):
        table.to_metadata(both)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False}
        )
        diff = compare_metadata(context, both)
    engine.dispose()
    # alembic's own version tables are not part of the application's metadata
    diff = [d for d in diff if not (d[0] == "remove_table" and "alembic" in d[1].name)]
    assert diff == [], diff
