"""check-ins and their answers

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-23 20:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_item", sa.String(length=32), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("draft", sa.Text(), nullable=True),
        sa.Column("last_update_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["visit_id"], ["visit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("visit_id"),
    )
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkin_participant_id"), ["participant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_checkin_status"), ["status"], unique=False)

    op.create_table(
        "checkin_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("respondent", sa.String(length=8), nullable=True),
        sa.Column("instrument_version", sa.String(length=40), nullable=False),
        sa.Column("answered_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["checkin_id"], ["checkin.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("checkin_answer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_checkin_answer_item", ["checkin_id", "item", "current"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_checkin_answer_answered_at"), ["answered_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("checkin_answer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_answer_answered_at"))
        batch_op.drop_index("ix_checkin_answer_item")
    op.drop_table("checkin_answer")
    with op.batch_alter_table("checkin", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_status"))
        batch_op.drop_index(batch_op.f("ix_checkin_participant_id"))
    op.drop_table("checkin")
