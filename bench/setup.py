"""Test-free data builders for the benchmarks: a scratch database and many participants."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy.engine import Engine

from followup.settings import Settings, load_settings
from models import schema
from models.checkins import move_to, open_visit, record_answer, start_checkin
from models.db import make_engine, transaction
from models.participants import participant_by_study_id
from models.tables import Participant

CHUNK = 5000


def scratch(workdir: Path, **overrides: object) -> tuple[Engine, Settings]:
    """A fresh, migrated SQLite database in `workdir` and settings pointing at it."""
    path = workdir / "bench.db"
    path.unlink(missing_ok=True)
    settings = load_settings(database_url=f"sqlite:///{path}", _env_file=None, **overrides)
    engine = make_engine(settings.database_url)
    schema.upgrade(engine)
    return engine, settings


def add_participants(
    engine: Engine, enrolled_on: Sequence[dt.date], *, chat_ids: Sequence[int] | None = None,
    now: dt.datetime, plan_key: str | None = None,
) -> None:  # fmt: skip
    """Insert linked participants in bulk (the ORM would dominate the setup time).

    `plan_key`: mark them planned under those settings (their visits inserted by the caller).
    """
    rows = [
        {"study_id": f"B{n:06d}", "language": "zh" if n % 3 else "en",
         "timezone": "Asia/Shanghai", "enrolled_on": day, "biospecimen": False,
         "status": "active", "chat_contact": True, "unreachable": False,
         "telegram_user_id": chat_ids[n] if chat_ids else 10_000_000 + n,
         "telegram_chat_id": chat_ids[n] if chat_ids else 10_000_000 + n, "created_at": now,
         "plan_key": plan_key}
        for n, day in enumerate(enrolled_on)
    ]  # fmt: skip
    for start in range(0, len(rows), CHUNK):
        with transaction(engine) as session:
            session.execute(Participant.__table__.insert(), rows[start : start + CHUNK])  # type: ignore[attr-defined]


def settings_for(database_url: str, **overrides: object) -> Settings:
    """Settings for a benchmark on `database_url`, with nothing read from the environment."""
    return load_settings(database_url=database_url, _env_file=None, **overrides)


# Answers that reach the dyspnoea question of check-in v1 without raising an alert; from there
# every item up to fever is a 0-4 scale where "0" raises nothing and skips the follow-ups.
ANSWERED = {"respondent": "self", "hospital": "no", "treatment": "immuno",
            "treatment_changed": "no", "progression": "no", "activity": "1"}  # fmt: skip
FIRST_SCALE = "dyspnoea_severity"
SCALE_ITEMS = 11  # dyspnoea, cough, fatigue, pain … fever: the "0" path through the scales


def open_checkins(
    engine: Engine,
    study_ids: Sequence[str],
    now: dt.datetime,
    *,
    answered: Mapping[str, str] = ANSWERED,
    waiting_at: str = FIRST_SCALE,
) -> list[int]:
    """Open visit 1 and its check-in for each participant, with `answered` given and waiting at
    the `waiting_at` question (the dyspnoea question by default).

    Returns the check-in ids; each check-in is at step 1, so its first button is `ci:<id>:1:0`.
    """
    waiting = []
    for study_id in study_ids:
        with transaction(engine) as session:
            participant = participant_by_study_id(session, study_id)
            assert participant is not None and participant.id is not None
            visit = open_visit(session, participant_id=participant.id, number=1,
                               due_date=now.date(), window_closes_on=now.date() + dt.timedelta(14),
                               now=now)  # fmt: skip
            checkin = start_checkin(session, visit=visit, instrument="checkin", version=1, now=now)
            for item, value in answered.items():
                record_answer(session, checkin=checkin, item=item, value=value, raw=None,
                              respondent="self", now=now)  # fmt: skip
            move_to(session, checkin=checkin, item=waiting_at, draft=None, now=now)
            assert checkin.id is not None
            waiting.append(checkin.id)
    return waiting
