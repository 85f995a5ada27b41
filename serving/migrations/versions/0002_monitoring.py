"""Model monitoring tables (issue 16): monitor_runs and monitor_metrics.

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("headline", sa.Text, nullable=False),
        sa.Column("sentences", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
    )
    op.create_index("ix_monitor_runs_day", "monitor_runs", ["as_of", "outcome"])
    op.create_table(
        "monitor_metrics",
        sa.Column("monitor_id", sa.Integer, sa.ForeignKey("monitor_runs.id"), primary_key=True),
        sa.Column("run_as_of", sa.Date, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("metric", sa.String(100), primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("monitor_metrics")
    op.drop_index("ix_monitor_runs_day", table_name="monitor_runs")
    op.drop_table("monitor_runs")
