"""The projection: runs, their stages, and the run-log offsets already applied.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
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
        "runs",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("subscriber", sa.String(100), nullable=False),
        sa.Column("subscriber_version", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(200)),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100)),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("sha", sa.String(64)),
        sa.Column("branch", sa.String(255)),
        sa.Column("pr_number", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
    )
    for column in ("subscriber", "repo", "delivery_id", "status", "requested_at"):
        op.create_index(f"ix_runs_{column}", "runs", [column])
    op.create_table(
        "stages",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("output", sa.JSON),
        sa.Column("error", sa.JSON),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("duration_ms", sa.Float),
    )
    op.create_table(
        "applied_offsets",
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("offset", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("applied_offsets")
    op.drop_table("stages")
    op.drop_table("runs")
