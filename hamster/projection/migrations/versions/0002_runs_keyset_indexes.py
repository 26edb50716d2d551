"""Indexes for newest-first pages of runs (keyset pagination), with or without one filter.

``hamster runs list``, the dashboard's runs page and ``GET /api/runs`` ask for the newest runs, optionally
of one repository, subscriber or status, then the page after a (requested_at, run_id) cursor. Each of these
composite indexes answers one of those queries by walking the index backwards from the cursor, so a page
costs the same at 100,000 runs as at 100. They replace the single-column indexes they start with.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FILTERS = ("repo", "subscriber", "status")


def _indexes() -> set[str]:
    return {str(i["name"]) for i in sa.inspect(op.get_bind()).get_indexes("runs")}


def upgrade() -> None:
    # A database stamped at 0001 after ``metadata.create_all`` (hamster.projection.migrations) may have these
    # already.
    present = _indexes()
    wanted = {"ix_runs_newest": ["requested_at", "run_id"]}
    wanted.update({f"ix_runs_{c}_newest": [c, "requested_at", "run_id"] for c in FILTERS})
    for name, columns in wanted.items():
        if name not in present:
            op.create_index(name, "runs", columns)
    for column in (*FILTERS, "requested_at"):
        if f"ix_runs_{column}" in present:
            op.drop_index(f"ix_runs_{column}", "runs")


def downgrade() -> None:
    for column in (*FILTERS, "requested_at"):
        op.create_index(f"ix_runs_{column}", "runs", [column])
    for column in FILTERS:
        op.drop_index(f"ix_runs_{column}_newest", "runs")
    op.drop_index("ix_runs_newest", "runs")
