"""escalation alerts: rules version, one alert per key, reasons, notices and resolution

Revision ID: 0008
Revises: 0003, 0004, 0005, 0006
Create Date: 2026-11-23 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0008"
down_revision: str | Sequence[str] | None = ("0003", "0004", "0005", "0006")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rules_version", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("key", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("reasons", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("notices", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("next_notice_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("resolution_note", sa.String(length=500), nullable=True))
        batch_op.create_index(batch_op.f("ix_alert_key"), ["key"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_alert_next_notice_at"), ["next_notice_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_next_notice_at"))
        batch_op.drop_index(batch_op.f("ix_alert_key"))
        for column in ("resolution_note", "resolved_by", "next_notice_at", "notices",
                       "reasons", "key", "rules_version"):  # fmt: skip
            batch_op.drop_column(column)
