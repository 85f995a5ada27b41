"""Input tables: ingest_runs, persons, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("persons_received", sa.Integer, nullable=False),
        sa.Column("persons_stored", sa.Integer, nullable=False),
        sa.Column("events_received", sa.Integer, nullable=False),
        sa.Column("events_stored", sa.Integer, nullable=False),
        sa.Column("rows_rejected", sa.Integer, nullable=False),
        sa.Column("report_path", sa.String(500), nullable=True),
    )
    op.create_table(
        "persons",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("birth_year", sa.Integer, nullable=False),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("town", sa.String(100), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("program", sa.String(32), nullable=False),
        sa.Column("program_start", sa.Date, nullable=False),
        sa.Column("program_end", sa.Date, nullable=False),
        sa.Column("primary_drug", sa.String(32), nullable=False),
        sa.Column("first_use_year", sa.Integer, nullable=True),
        sa.Column("prior_compulsory_detox", sa.Integer, nullable=True),
        sa.Column("household", sa.String(16), nullable=True),
        sa.Column("living", sa.String(16), nullable=True),
        sa.Column("marital", sa.String(64), nullable=True),
        sa.Column("education", sa.String(64), nullable=True),
        sa.Column("ingest_run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=True),
    )
    op.create_index("ix_persons_worker", "persons", ["worker_id"])
    op.create_index("ix_persons_town", "persons", ["district", "town"])
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("persons.person_id"), nullable=False),
        sa.Column("ts", sa.DateTime, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("result", sa.String(200), nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("source", sa.String(40), nullable=True),
        sa.Column("ingest_run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_events_person_recorded", "events", ["person_id", "recorded_at"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("persons")
    op.drop_table("ingest_runs")
