"""visit indexes for the coordinators' views: (status, due_date) and (status, window_closes_on)

The daily digest and /due list planned visits due within a week and visits missed in the last
30 days; with the status index alone SQLite read every planned visit of the cohort.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index("ix_visit_status_due_date", ["status", "due_date"], unique=False)
        batch_op.create_index(
            "ix_visit_status_window_closes_on", ["status", "window_closes_on"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_status_window_closes_on")
        batch_op.drop_index("ix_visit_status_due_date")
