"""The batched dispatch pass: the same rows as one-by-one, a guard that cannot be bypassed, and
coordinator views that stop at what they show."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from followup.settings import Settings
from messages.render import LANGUAGES
from models import alerts, outbox, visits
from models.coordinator_views import alert_rows, visit_rows
from models.db import transaction
from models.tables import Alert, OutboxMessage, Participant, Visit
from scheduler.clock import FrozenClock
from scheduler.dispatch import _Texts, checkin_button, dispatch_pass
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


def test_the_visit_view_merges_its_statuses_in_order_at_every_cut(
    engine: Engine, clock: FrozenClock
) -> None:
    """Missed, overdue and due visits interleaved by due date, with ties across statuses: the
    first k rows are the first k of the whole view for every k (each status is read apart)."""
    today = dt.date(2026, 4, 15)
    _enrol(engine, clock, [dt.date(2026, 1, 1)] * 12)
    shapes = [  # (status, due date, window closes on), one visit each
        ("missed", dt.date(2026, 4, 1), dt.date(2026, 4, 14)),
        ("open", dt.date(2026, 4, 1), dt.date(2026, 4, 20)),
        ("planned", dt.date(2026, 4, 16), dt.date(2026, 4, 30)),
        ("missed", dt.date(2026, 4, 3), dt.date(2026, 4, 14)),
        ("open", dt.date(2026, 4, 16), dt.date(2026, 4, 30)),
        ("planned", dt.date(2026, 4, 1), dt.date(2026, 4, 30)),
        ("missed", dt.date(2026, 4, 16), dt.date(2026, 4, 14)),
        ("open", dt.date(2026, 4, 3), dt.date(2026, 4, 30)),
        ("planned", dt.date(2026, 4, 3), dt.date(2026, 4, 30)),
        ("missed", dt.date(2026, 1, 1), dt.date(2026, 3, 1)),  # closed over 30 days ago
        ("planned", dt.date(2026, 4, 23), dt.date(2026, 5, 7)),  # beyond the week ahead
        ("completed", dt.date(2026, 4, 1), dt.date(2026, 4, 14)),
    ]
    with transaction(engine) as session:
        ids = session.exec(select(Participant.id).order_by(col(Participant.id))).all()
        for pid, (status, due, closes) in zip(ids, reversed(shapes), strict=True):
            assert pid is not None
            visit = Visit(participant_id=pid, number=1, due_date=due, window_closes_on=closes,
                          status=status, created_at=clock())  # fmt: skip
            session.add(visit)
    with transaction(engine) as session:
        every = visit_rows(session, today=today)
        # By due date, then study id (B000 has the last shape): the statuses alternate.
        assert [(r.due_date.day, r.study_id, r.state) for r in every] == [
            (1, "B006", "due"), (1, "B010", "overdue"), (1, "B011", "missed"),
            (3, "B003", "due"), (3, "B004", "overdue"), (3, "B008", "missed"),
            (16, "B005", "missed"), (16, "B007", "due"), (16, "B009", "due"),
        ]  # fmt: skip
        assert len(every) == 9
        for k in range(1, len(every) + 1):
            assert visit_rows(session, today=today, first=k) == every[:k]


def test_raised_alerts_each_get_their_own_notice(engine: Engine, clock: FrozenClock) -> None:
    """The new ids come back unordered: each alert still gets the notice written for it, and
    alerts alike in every column share their notices out one each."""
    _enrol(engine, clock, [dt.date(2026, 1, 1)] * 3)
    with transaction(engine) as session:
        pids = list(session.exec(select(Participant.id).order_by(col(Participant.id))).all())
    wanted = [
        alerts.NewAlert(pids[n % 3], None, f"detail {n}", f"notice {n}") for n in range(40)
    ] + [alerts.NewAlert(pids[0], None, "alike", f"alike {n}") for n in range(3)]
    wanted += [alerts.NewAlert(None, None, "no participant", "notice none")]
    with transaction(engine) as session:
        ids = alerts.raise_alerts(
            session, tier="ADMIN", kind="test", now=clock(), alerts=wanted[::-1],
            notify_chat_id=COORDINATORS,
        )  # fmt: skip
    assert len(set(ids)) == len(wanted)
    with transaction(engine) as session:
        stored = {a.id: a for a in session.exec(select(Alert)).all()}
        notices = {m.purpose: m.text for m in session.exec(select(OutboxMessage)).all()}
    alike = []
    for alert_id, new in zip(ids, wanted[::-1], strict=True):
        row = stored[alert_id]
        assert (row.participant_id, row.detail) == (new.participant_id, new.detail)
        if new.detail == "alike":
            alike.append(notices[f"alert:{alert_id}"])
        else:
            assert notices[f"alert:{alert_id}"] == new.notice
    assert sorted(alike) == ["alike 0", "alike 1", "alike 2"]


def test_due_visits_are_the_oldest_across_both_statuses_at_every_limit(
    engine: Engine, clock: FrozenClock
) -> None:
    """Planned and open visits interleaved by when they fall due, with ties: each batch is the
    oldest `limit` of all of them, by (next action, id); nothing not yet due, nothing closed."""
    _enrol(engine, clock, [dt.date(2026, 1, 1)] * 10)
    base = SEND_HOUR - dt.timedelta(hours=6)
    shapes = [  # (status, hours after base): 6 is exactly now, 7 is not yet due
        ("open", 3), ("planned", 1), ("open", 1), ("planned", 5), ("open", 0),
        ("planned", 3), ("missed", 0), ("planned", 7), ("open", 6), ("completed", 2),
    ]  # fmt: skip
    with transaction(engine) as session:
        ids = session.exec(select(Participant.id).order_by(col(Participant.id))).all()
        for pid, (status, hours) in zip(ids, shapes, strict=True):
            assert pid is not None
            active = status in ("open", "planned")
            visit = Visit(participant_id=pid, number=1, due_date=dt.date(2026, 4, 15),
                          window_closes_on=dt.date(2026, 4, 29), status=status,
                          created_at=clock(), stage="prompt" if active else "done",
                          next_action_at=base + dt.timedelta(hours=hours))  # fmt: skip
            session.add(visit)
    with transaction(engine) as session:
        every = visits.due_visits(session, now=SEND_HOUR, limit=100)
        order = [(v.next_action_at, v.id) for v, _ in every]
        assert order == sorted(order) and len(every) == 7
        due_hours = [round((at - base).total_seconds() / 3600) for at, _ in order if at]
        assert due_hours == [0, 1, 1, 3, 3, 5, 6]
        for limit in range(1, len(every) + 1):
            assert visits.due_visits(session, now=SEND_HOUR, limit=limit) == every[:limit]


def test_a_batch_button_is_the_encoded_checkin_button(settings: Settings) -> None:
    """The batch's buttons are encoded once per language with each visit's id put in: the
    very text `checkin_button`, encoded as every other markup, would store."""
    texts = _Texts(settings)
    for language in LANGUAGES:
        for visit_id in (1, 42, 10_000_007):
            stored = texts._button(visit_id, language)
            assert stored == outbox.encode_markup(checkin_button(visit_id, language))
            assert json.loads(stored) == checkin_button(visit_id, language)
