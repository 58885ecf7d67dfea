"""Row locks: the participant's, which orders withdrawals against sends, and the check-in's.

A row locked once stays locked until the transaction ends, so each lock is remembered in the
session until then (forgotten at every commit or rollback) and not taken, or read, again: the
object this transaction locked is the current row, with its own changes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import bindparam, event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from models.checkin_tables import CheckIn
from models.tables import Participant, Visit

_LOCKED = "followup_locked_participants"
_LOCKED_CHECKINS = "followup_locked_checkins"


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction: SessionTransaction) -> None:
    """A commit or rollback releases the locks: forget them, whoever ended the transaction.
    (A flush runs in an inner SessionTransaction of its own, which releases nothing.)"""
    if transaction.parent is not None:
        return
    session.info.pop(_LOCKED, None)
    session.info.pop(_LOCKED_CHECKINS, None)


def _remember(session: Session, participants: Iterable[Participant | None]) -> None:
    held: dict[int, Participant] = session.info.setdefault(_LOCKED, {})
    held.update((p.id, p) for p in participants if p is not None and p.id is not None)


def _held(session: Session) -> dict[int, Participant]:
    held: dict[int, Participant] = session.info.get(_LOCKED, {})
    return held


def held_participant(session: Session, participant_id: int | None) -> Participant | None:
    """The participant if this transaction holds its lock, else None (nothing is read)."""
    return None if participant_id is None else _held(session).get(participant_id)


def _locked(*where: Any) -> SelectOfScalar[Participant]:
    """Participant rows, locked until the transaction ends and re-read from the database."""
    query = select(Participant).where(*where).with_for_update()
    return query.execution_options(populate_existing=True)


def lock_participant(session: Session, participant_id: int) -> Participant | None:
    """Read the participant row and hold it until the transaction ends.

    PostgreSQL takes a row lock (FOR UPDATE). SQLite has no row locks: every transaction begins
    IMMEDIATE (models/db.py), so the whole database is already serialised for writers.
    """
    if participant_id in _held(session):
        return _held(session)[participant_id]
    participant = session.exec(_locked(Participant.id == participant_id)).first()
    _remember(session, [participant])
    return participant


def lock_participants(
    session: Session, participant_ids: Collection[int]
) -> dict[int, Participant]:
    """`lock_participant` for several rows in one statement, always in ascending id order, so
    two transactions that each lock several participants cannot deadlock on PostgreSQL."""
    held = _held(session)
    found = {i: held[i] for i in participant_ids if i in held}
    rest = sorted(i for i in participant_ids if i not in held)
    if rest:
        query = _locked(col(Participant.id).in_(rest)).order_by(col(Participant.id))
        locked = session.exec(query).all()
        _remember(session, locked)
        found.update((p.id, p) for p in locked if p.id is not None)
    return found


# Built once: the statements every answer runs. SQLAlchemy memoises a statement's cache key, so
# a prebuilt statement skips both its construction and its key on each execution.
_BY_USER = _locked(Participant.telegram_user_id == bindparam("telegram_user_id"))


def lock_participant_by_user(session: Session, telegram_user_id: int) -> Participant | None:
    """The participant linked to this Telegram user, locked like `lock_participant`.

    For work that hands its own reply over in its transaction (`outbox.hand_over_queued`):
    taking the participant first, as a withdrawal does, means the two wait for each other
    instead of each holding a row the other needs (a deadlock on PostgreSQL).
    """
    participant = session.exec(_BY_USER, params={"telegram_user_id": telegram_user_id}).first()
    _remember(session, [participant])
    return participant


def remember_checkin(session: Session, checkin: CheckIn | None) -> CheckIn | None:
    """Note a check-in this transaction locked: it stays locked, and current, until the end."""
    if checkin is not None and checkin.id is not None:
        session.info.setdefault(_LOCKED_CHECKINS, {})[checkin.id] = checkin
    return checkin


_CHECKIN_WITH_VISIT = (
    select(CheckIn, Visit)
    .join(Visit, col(Visit.id) == col(CheckIn.visit_id))
    .where(CheckIn.id == bindparam("checkin_id"))
    .with_for_update(of=CheckIn)
    .execution_options(populate_existing=True)
)


def locked_checkin_with_visit(session: Session, checkin_id: int) -> tuple[CheckIn, Visit] | None:
    """The check-in, locked for this transaction so two updates cannot both advance it, and its
    visit (read, not locked), in one statement."""
    held: dict[int, CheckIn] = session.info.get(_LOCKED_CHECKINS, {})
    if checkin_id in held:
        visit = session.get(Visit, held[checkin_id].visit_id)
        return (held[checkin_id], visit) if visit is not None else None
    found = session.exec(_CHECKIN_WITH_VISIT, params={"checkin_id": checkin_id}).first()
    if found is None:
        return None
    remember_checkin(session, found[0])
    return found[0], found[1]


def current_checkin(session: Session, checkin_id: int) -> CheckIn | None:
    """The check-in as it stands now: the one this transaction locked, or else read afresh."""
    held: dict[int, CheckIn] = session.info.get(_LOCKED_CHECKINS, {})
    if checkin_id in held:
        return held[checkin_id]
    return session.get(CheckIn, checkin_id, populate_existing=True)
