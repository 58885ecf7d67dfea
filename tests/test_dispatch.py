"""The dispatch pass over time: a study, quiet hours, catch-up, DST, stops, two dispatchers."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from followup.settings import Settings
from models.db import transaction
from models.participants import participant_by_study_id
from models.tables import Alert, OutboxMessage, Participant, Visit
from scheduler.clock import FrozenClock
from scheduler.dispatch import dispatch_pass
from tests.factories import enroll_participant

COORDINATORS = -100200300


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def enrol_linked(engine: Engine, clock: FrozenClock, study_id: str = "P001", **kw: object) -> int:
    """Enrol a participant and link a chat to them directly; return the chat id."""
    enroll_participant(engine, clock, study_id, **kw)  # type: ignore[arg-type]
    with transaction(engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None and participant.id is not None
        chat = 900000 + participant.id
        participant.telegram_user_id = participant.telegram_chat_id = chat
        session.add(participant)
    return chat


SCHEDULE_PURPOSES = ("prompt:", "reminder", "alert:")


def purposes(engine: Engine) -> list[str]:
    """The schedule's outbox rows (other features, such as a daily digest, may add their own)."""
    with transaction(engine) as session:
        query = select(OutboxMessage.purpose).order_by(col(OutboxMessage.id))
        return [p for p in session.exec(query).all() if p.startswith(SCHEDULE_PURPOSES)]


def visit_rows(engine: Engine, study_id: str = "P001") -> list[Visit]:
    with transaction(engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None
        query = select(Visit).where(Visit.participant_id == participant.id)
        return list(session.exec(query.order_by(col(Visit.number))).all())


def travel(engine: Engine, settings: Settings, clock: FrozenClock, until: dt.datetime,
           step: dt.timedelta = dt.timedelta(hours=1)) -> None:  # fmt: skip
    """Run a pass every `step` until `until`, as the scheduler would (only less often)."""
    while clock() < until:
        dispatch_pass(engine, settings, clock())
        clock.advance(step)


def with_coordinators(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"coordinator_chat_id": COORDINATORS, **changes})


def test_whole_study_for_one_participant_prompts_reminds_and_hands_over(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    settings = with_coordinators(settings, study_end=dt.date(2027, 1, 31))
    clock.set(utc(2026, 1, 15, 1))
    enrol_linked(engine, clock, enrolled_on=dt.date(2026, 1, 15))
    travel(engine, settings, clock, utc(2027, 2, 20), step=dt.timedelta(hours=6))
    sent = purposes(engine)
    prompts = [p for p in sent if p.startswith("prompt:")]
    assert prompts == [f"prompt:P001:{n}" for n in (1, 2, 3, 4)]
    assert sum(p.startswith("reminder1:") for p in sent) == 4
    assert sum(p.startswith("reminder2:") for p in sent) == 4
    visits = visit_rows(engine)
    dues = [
        dt.date(2026, 4, 15),
        dt.date(2026, 7, 15),
        dt.date(2026, 10, 15),
        dt.date(2027, 1, 15),
    ]
    assert [v.due_date for v in visits] == dues
    assert all(v.status == "missed" and v.next_action_at is None for v in visits)
    with transaction(engine) as session:
        alerts = session.exec(select(Alert)).all()
    assert [(a.tier, a.kind) for a in alerts] == [("ADMIN", "visit_missed")] * 4
    assert sum(p.startswith("alert:") for p in sent) == 4


def test_prompt_goes_out_at_the_local_send_hour_with_one_checkin_button(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    clock.set(utc(2026, 4, 14, 12))
    chat = enrol_linked(engine, clock, enrolled_on=dt.date(2026, 1, 15))
    dispatch_pass(engine, settings, utc(2026, 4, 15, 1, 59))  # 09:59 in Shanghai
    assert purposes(engine) == []
    dispatch_pass(engine, settings, utc(2026, 4, 15, 2))
    with transaction(engine) as session:
        message = session.exec(select(OutboxMessage)).one()
    visit = visit_rows(engine)[0]
    assert message.chat_id == chat and message.purpose == "prompt:P001:1"
    assert message.text.splitlines()[0] == "研究团队的3个月随访问卷已准备好。"
    assert message.reply_markup is not None
    assert f'"callback_data": "checkin:open:{visit.id}"' in message.reply_markup
    assert visit.status == "open"


def test_running_the_pass_twice_sends_nothing_twice(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    enrol_linked(engine, clock, enrolled_on=dt.date(2026, 1, 15))
    for _ in range(3):
        dispatch_pass(engine, settings, utc(2026, 4, 19, 3))
    assert purposes(engine) == ["prompt:P001:1"]


def test_month_end_enrolment_rolls_back_to_the_last_day(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    clock.set(utc(2025, 11, 30, 3))
    enrol_linked(engine, clock, enrolled_on=dt.date(2025, 11, 30))
    dispatch_pass(engine, settings, clock())
    dues = [v.due_date for v in visit_rows(engine)[:2]]
    assert dues == [dt.date(2026, 2, 28), dt.date(2026, 5, 30)]
    dispatch_pass(engine, settings, utc(2026, 2, 28, 2))
    assert purposes(engine) == ["prompt:P001:1"]


def test_nothing_is_sent_in_quiet_hours_and_it_goes_out_in_the_morning(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    settings = settings.model_copy(update={"send_hour": 20, "quiet_hours": "19:00-08:00"})
    enrol_linked(engine, clock, enrolled_on=dt.date(2026, 1, 15))
    for hour in range(11, 24):  # 19:00 … 07:00 local on 15/16 April
        dispatch_pass(engine, settings, utc(2026, 4, 15, hour))
    assert purposes(engine) == []
    dispatch_pass(engine, settings, utc(2026, 4, 16, 0))  # 08:00 local
    assert purposes(engine) == ["prompt:P001:1"]


def test_catch_up_after_downtime_sends_once_or_hands_over_as_missed(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    settings = with_coordinators(settings)
    enrol_linked(engine, clock, "P001", enrolled_on=dt.date(2026, 1, 15))
    enrol_linked(engine, clock, "P002", enrolled_on=dt.date(2026, 1, 1))
    dispatch_pass(engine, settings, utc(2026, 1, 20, 2))
    # Down from 20 January until 20 April, 10:00 local: P002's first window has closed.
    dispatch_pass(engine, settings, utc(2026, 4, 20, 2))
    assert sorted(purposes(engine))[1:] == ["prompt:P001:1"]
    assert visit_rows(engine, "P002")[0].status == "missed"
    assert visit_rows(engine, "P001")[0].stage == "reminder2"  # reminder 1 is overdue: skipped
    dispatch_pass(engine, settings, utc(2026, 4, 22, 2))
    assert purposes(engine)[-1] == "reminder2:P001:1"


def test_send_hour_follows_daylight_saving_time(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    enrol_linked(
        engine, clock, "NY1", enrolled_on=dt.date(2025, 12, 9), timezone="America/New_York"
    )
    dispatch_pass(engine, settings, utc(2026, 1, 1))
    visit = visit_rows(engine, "NY1")[0]
    assert visit.due_date == dt.date(2026, 3, 9)  # the day after DST starts
    assert visit.next_action_at == utc(2026, 3, 9, 14)  # 10:00 EDT, not 15:00 UTC
    dispatch_pass(engine, settings, utc(2026, 3, 9, 13, 59))
    assert purposes(engine) == []
    dispatch_pass(engine, settings, utc(2026, 3, 9, 14))
    assert purposes(engine) == ["prompt:NY1:1"]


def _set(engine: Engine, study_id: str, **values: object) -> None:
    with transaction(engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None
        for key, value in values.items():
            setattr(participant, key, value)
        session.add(participant)


def test_withdrawal_and_confirmed_death_stop_everything(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    settings = with_coordinators(settings)
    for study_id in ("W01", "D01", "C01"):
        enrol_linked(engine, clock, study_id, enrolled_on=dt.date(2026, 1, 15))
    dispatch_pass(engine, settings, utc(2026, 4, 15, 2))
    _set(engine, "W01", status="withdrawn")
    _set(engine, "D01", status="deceased")
    _set(engine, "C01", chat_contact=False)
    before = purposes(engine)
    clock.set(utc(2026, 4, 15, 3))
    travel(engine, settings, clock, utc(2026, 5, 1))
    after = purposes(engine)[len(before) :]
    assert not [p for p in after if not p.startswith("alert:")]
    for study_id in ("W01", "D01"):
        assert {v.status for v in visit_rows(engine, study_id)} == {"cancelled"}
    assert visit_rows(engine, "C01")[0].status == "missed"  # handed over for a phone call
    with transaction(engine) as session:
        kinds = session.exec(select(Alert.kind).join(Participant)).all()
    assert list(kinds) == ["visit_missed"]


def test_death_report_holds_prompts_until_a_coordinator_decides(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    enrol_linked(engine, clock, enrolled_on=dt.date(2026, 1, 15))
    _set(engine, "P001", status="death_reported")
    dispatch_pass(engine, settings, utc(2026, 4, 15, 2))
    assert purposes(engine) == []
    _set(engine, "P001", status="active")  # the report was a mistake
    dispatch_pass(engine, settings, utc(2026, 4, 15, 3))
    assert purposes(engine) == ["prompt:P001:1"]


def test_changing_a_setting_replans_future_visits_and_resends_nothing(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    enrol_linked(engine, clock, enrolled_on=dt.date(2026, 1, 15))
    dispatch_pass(engine, settings, utc(2026, 4, 15, 2))
    monthly = settings.model_copy(update={"visit_interval_months": 2})
    dispatch_pass(engine, monthly, utc(2026, 4, 16, 2))
    visits = visit_rows(engine)
    assert visits[0].due_date == dt.date(2026, 4, 15) and visits[0].status == "open"
    assert visits[1].due_date == dt.date(2026, 5, 15)  # visit 2 is now 4 months in
    assert purposes(engine) == ["prompt:P001:1"]


def test_two_dispatchers_over_a_thousand_due_visits_make_no_duplicates_and_lose_none(
    engine: Engine, settings: Settings, clock: FrozenClock
) -> None:
    with transaction(engine) as session:
        for n in range(1000):
            session.add(Participant(
                study_id=f"C{n:04d}", language="zh" if n % 2 else "en",
                timezone="Asia/Shanghai", enrolled_on=dt.date(2026, 1, 15),
                telegram_user_id=100000 + n, telegram_chat_id=100000 + n, created_at=clock(),
            ))  # fmt: skip
    dispatch_pass(engine, settings, utc(2026, 1, 16))  # plan everyone first
    now = utc(2026, 4, 15, 2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda b: dispatch_pass(engine, settings, now, batch=b), [50, 70]))
    sent = purposes(engine)
    assert len(sent) == len(set(sent)) == 1000
    assert sum(r.sent.get("prompt", 0) for r in reports) == 1000
    with transaction(engine) as session:
        first = session.exec(select(Visit).where(Visit.number == 1)).all()
    assert {v.status for v in first} == {"open"}
