"""Test data builders."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from models.db import transaction
from models.participants import IssuedInvite, enroll
from scheduler.clock import FrozenClock


def enroll_participant(
    engine: Engine,
    clock: FrozenClock,
    study_id: str = "P001",
    *,
    language: str = "zh",
    enrolled_on: dt.date = dt.date(2026, 1, 15),
    timezone: str = "Asia/Shanghai",
    biospecimen: bool = False,
    invite_ttl: dt.timedelta = dt.timedelta(days=30),
) -> IssuedInvite:
    with transaction(engine) as session:
        return enroll(
            session,
            study_id=study_id,
            enrolled_on=enrolled_on,
            language=language,
            timezone=timezone,
            biospecimen=biospecimen,
            now=clock(),
            invite_ttl=invite_ttl,
            actor="coordinator:test",
        )


def open_visit(
    engine: Engine,
    clock: FrozenClock,
    study_id: str = "P001",
    *,
    number: int = 1,
    due_date: dt.date = dt.date(2026, 2, 25),
    window_closes_on: dt.date = dt.date(2026, 3, 25),
) -> int:
    """An OPEN visit for the participant, as the schedule would open it; returns its id."""
    from models.checkins import open_visit as add_open_visit
    from models.participants import participant_by_study_id

    with transaction(engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None and participant.id is not None
        visit = add_open_visit(
            session,
            participant_id=participant.id,
            number=number,
            due_date=due_date,
            window_closes_on=window_closes_on,
            now=clock(),
        )
        assert visit.id is not None
        return visit.id


def linked_participant(engine: Engine, clock: FrozenClock, study_id: str, user_id: int) -> int:
    """An enrolled participant linked to Telegram user (and private chat) `user_id`; their id."""
    from models.participants import participant_by_study_id

    enroll_participant(engine, clock, study_id)
    with transaction(engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None and participant.id is not None
        participant.telegram_user_id = participant.telegram_chat_id = user_id
        session.add(participant)
        return participant.id
