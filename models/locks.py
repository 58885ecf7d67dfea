"""The participant row lock that orders withdrawals against sends."""

from __future__ import annotations

from sqlmodel import Session, select

from models.tables import Participant


def lock_participant(session: Session, participant_id: int) -> Participant | None:
    """Read the participant row and hold it until the transaction ends.

    PostgreSQL takes a row lock (FOR UPDATE). SQLite has no row locks: every transaction begins
    IMMEDIATE (models/db.py), so the whole database is already serialised for writers.
    """
    query = (
        select(Participant)
        .where(Participant.id == participant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.exec(query).first()
