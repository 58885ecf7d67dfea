"""The participant row lock that orders withdrawals against sends."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from models.tables import Participant


def _locked(*where: Any) -> SelectOfScalar[Participant]:
    """Participant rows, locked until the transaction ends and re-read from the database."""
    query = select(Participant).where(*where).with_for_update()
    return query.execution_options(populate_existing=True)


def lock_participant(session: Session, participant_id: int) -> Participant | None:
    """Read the participant row and hold it until the transaction ends.

    PostgreSQL takes a row lock (FOR UPDATE). SQLite has no row locks: every transaction begins
    IMMEDIATE (models/db.py), so the whole database is already serialised for writers.
    """
    return session.exec(_locked(Participant.id == participant_id)).first()


def lock_participants(
    session: Session, participant_ids: Collection[int]
) -> dict[int, Participant]:
    """`lock_participant` for several rows in one statement, always in ascending id order, so
    two transactions that each lock several participants cannot deadlock on PostgreSQL."""
    if not participant_ids:
        return {}
    query = _locked(col(Participant.id).in_(sorted(participant_ids))).order_by(col(Participant.id))
    return {p.id: p for p in session.exec(query).all() if p.id is not None}


def lock_participant_by_user(session: Session, telegram_user_id: int) -> Participant | None:
    """The participant linked to this Telegram user, locked like `lock_participant`.

    For work that hands its own reply over in its transaction (`outbox.hand_over_queued`):
    taking the participant first, as a withdrawal does, means the two wait for each other
    instead of each holding a row the other needs (a deadlock on PostgreSQL).
    """
    return session.exec(_locked(Participant.telegram_user_id == telegram_user_id)).first()
