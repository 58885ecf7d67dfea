"""The batched dispatch pass: the same rows as one-by-one, a guard that cannot be bypassed, and
coordinator views that stop at what they show."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from followup.settings import Settings
from models import visits
from models.coordinator_views import alert_rows, visit_rows
from models.db import transaction
from models.tables import Alert, OutboxMessage, Participant, Visit
from scheduler.clock import FrozenClock
from scheduler.dispatch import dispatch_pass
from tests.test_dispatch import COORDINATORS, utc

SEND_HOUR = utc(2026, 4, 15, 2)  # 10:00 in Shanghai


def _enrol(engine: Engine, clock: FrozenClock, days: list[dt.date]) -> None:
    with transaction(engine) as session:
        for n, day in enumerate(days):
            session.add(Participant(
                study_id=f"B{n:03d}", language="zh" if n % 2 else "en",
                timezone="Asia/Shanghai", enrolled_on=day,
                telegram_user_id=200000 + n, telegram_chat_id=200000 + n, created_at=clock(),
            ))  # fmt: skip


def test_one_batch_prompts_reminds_and_hands_over_like_one_by_one(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    settings = settings.model_copy(update={"coordinator_chat_id": COORDINATORS})
    # Due today, due 3 days ago (reminder 1), and due 15 days ago (window closed: missed).
    days = [dt.date(2026, 1, 15), dt.date(2026, 1, 12), dt.date(2025, 12, 31)] * 4
    _enrol(engine, clock, days)
    dispatch_pass(engine, settings, utc(2026, 1, 16))
    dispatch_pass(engine, settings, utc(2026, 4, 12, 2))  # the prompts of the earlier two
    report = dispatch_pass(engine, settings, SEND_HOUR, batch=5)
    assert report.sent == {"prompt": 4, "reminder1": 4} and report.missed == 4
    with transaction(engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        alerts = session.exec(select(Alert).order_by(col(Alert.id))).all()
        by_purpose = {m.purpose: m for m in rows}
        for alert in alerts:
            notice = by_purpose[f"alert:{alert.id}"]
            assert (alert.tier, alert.kind, alert.status) == ("ADMIN", "visit_missed", "open")
            assert alert.notices == 1 and alert.notified_at == SEND_HOUR
            assert alert.visit_id is not None and alert.participant_id is not None
            assert notice.chat_id == COORDINATORS and notice.participant_id is None
            assert notice.reply_markup is not None
            assert f'"al:v1:a:{alert.id}"' in notice.reply_markup
        for n in range(0, 12, 3):
            prompt = by_purpose[f"prompt:B{n:03d}:1"]
            assert prompt.chat_id == 200000 + n and prompt.participant_id is not None
            assert prompt.reply_markup is not None and "checkin:open:" in prompt.reply_markup
            assert f"reminder1:B{n + 1:03d}:1" in by_purpose
    assert len(alerts) == 4
    # Nothing is left to do, and a second pass writes nothing twice.
    again = dispatch_pass(engine, settings, SEND_HOUR)
    assert again.messages == 0 and again.missed == 0


def test_a_visit_changed_under_the_batch_rolls_the_batch_back(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    _enrol(engine, clock, [dt.date(2026, 1, 15)] * 2)
    dispatch_pass(engine, settings, utc(2026, 1, 16))
    with pytest.raises(visits.ConcurrentChange), transaction(engine) as session:
        due = visits.due_visits(session, now=SEND_HOUR, limit=10)
        assert len(due) == 2
        # What a second writer would have done, had the rows not been locked.
        session.execute(
            update(Visit)
            .where(col(Visit.id) == due[0][0].id)
            .values(stage="reminder1")
            .execution_options(synchronize_session=False)
        )
        moves = [(visit, "reminder1", SEND_HOUR, "open") for visit, _ in due]
        visits.advance_many(session, moves)
    with transaction(engine) as session:
        stages = session.exec(select(Visit.stage).where(Visit.number == 1)).all()
    assert list(stages) == ["prompt", "prompt"]


def test_the_views_stop_at_what_they_show(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    settings = settings.model_copy(update={"coordinator_chat_id": COORDINATORS})
    days = [dt.date(2025, 12, 15) + dt.timedelta(days=n) for n in range(30)]
    _enrol(engine, clock, days)
    dispatch_pass(engine, settings, utc(2026, 1, 16))
    dispatch_pass(engine, settings, SEND_HOUR)
    today = dt.date(2026, 4, 15)
    with transaction(engine) as session:
        every_visit = visit_rows(session, today=today)
        every_alert = alert_rows(session, only_open=True)
        assert len(every_visit) > 7 and len(every_alert) > 3
        assert visit_rows(session, today=today, first=7) == every_visit[:7]
        assert alert_rows(session, only_open=True, last=3) == every_alert[-3:]
