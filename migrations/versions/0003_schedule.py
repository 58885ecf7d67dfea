"""the follow-up schedule: visit stages, plan keys and alerts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=True),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("tier", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["visit_id"], ["visit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index("ix_alert_status_tier", ["status", "tier"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alert_participant_id"), ["participant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alert_visit_id"), ["visit_id"], unique=False)

    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stage", sa.String(length=16), nullable=False, server_default="prompt")
        )
        batch_op.add_column(
            sa.Column("next_action_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("note", sa.String(length=500), nullable=True))
        batch_op.create_index(
            "ix_visit_status_next_action_at", ["status", "next_action_at"], unique=False
        )

    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_key", sa.String(length=128), nullable=True))
        batch_op.create_index(batch_op.f("ix_participant_plan_key"), ["plan_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participant_plan_key"))
        batch_op.drop_column("plan_key")

    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_status_next_action_at")
        batch_op.drop_column("note")
        batch_op.drop_column("next_action_at")
        batch_op.drop_column("stage")

    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_visit_id"))
        batch_op.drop_index(batch_op.f("ix_alert_participant_id"))
        batch_op.drop_index("ix_alert_status_tier")

    op.drop_table("alert")
