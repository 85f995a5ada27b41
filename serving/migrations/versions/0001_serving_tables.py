"""Serving tables: users, tokens, audit log, scoring runs and their rows, actions.

Revision ID: s0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0001"
down_revision = None
branch_labels = None
depends_on = None

_NO_EDIT = "audit log is append-only"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=True),
        sa.Column("district", sa.String(100), nullable=True),
        sa.Column("town", sa.String(100), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=True),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_person", "audit_log", ["person_id", "at"])
    op.create_index("ix_audit_at", "audit_log", ["at"])
    _append_only("audit_log")
    op.create_table(
        "score_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("n_persons", sa.Integer, nullable=False),
        sa.Column("models", sa.Text, nullable=False),
        sa.Column("feature_names", sa.Text, nullable=False),
        sa.Column("seconds", sa.Float, nullable=True),
    )
    op.create_index("ix_runs_as_of", "score_runs", ["as_of", "status"])
    run_fk = sa.ForeignKey("score_runs.id")
    op.create_table(
        "scores",
        sa.Column("run_id", sa.Integer, run_fk, primary_key=True),
        sa.Column("outcome", sa.String(24), primary_key=True),
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("town", sa.String(100), nullable=False),
        sa.Column("p", sa.Float, nullable=False),
        sa.Column("band", sa.Integer, nullable=False),
        sa.Column("rank_caseload", sa.Integer, nullable=False),
        sa.Column("rank_town", sa.Integer, nullable=False),
        sa.Column("rank_district", sa.Integer, nullable=False),
        sa.Column("change", sa.Float, nullable=True),
        sa.Column("alert_mask", sa.Integer, nullable=False),
        sa.Column("cohort_mask", sa.Integer, nullable=False),
        sa.Column("top_spec", sa.String(64), nullable=True),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("item", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_scores_caseload", "scores", ["run_id", "outcome", "worker_id", "rank_caseload"]
    )
    op.create_index(
        "ix_scores_town", "scores", ["run_id", "outcome", "district", "town", "rank_town"]
    )
    op.create_index(
        "ix_scores_district", "scores", ["run_id", "outcome", "district", "rank_district"]
    )
    op.create_index("ix_scores_person", "scores", ["person_id", "run_id"])
    op.create_table(
        "explanations",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.id"), primary_key=True),
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("outcome", sa.String(24), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "feature_rows",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.id"), primary_key=True),
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.id"), primary_key=True),
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("since", sa.DateTime, nullable=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "town_kpis",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.id"), primary_key=True),
        sa.Column("district", sa.String(100), primary_key=True),
        sa.Column("town", sa.String(100), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("plan_item", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("outcome", sa.String(24), nullable=True),
        sa.Column("agrees_with_score", sa.Boolean, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("run_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_actions_person", "actions", ["person_id", "at"])


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on ``table`` inside the database itself."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{_NO_EDIT}'); END"
            )
        return
    op.execute(
        f"CREATE FUNCTION {table}_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{_NO_EDIT}'; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {table}_no_edit BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_refuse()"
    )


def downgrade() -> None:
    for name in ("actions", "town_kpis", "alerts", "feature_rows", "explanations", "scores"):
        op.drop_table(name)
    op.drop_table("score_runs")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_edit ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_refuse()")
    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    op.drop_table("users")
