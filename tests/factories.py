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
