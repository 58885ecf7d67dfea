"""The visit plan and its due instants, as pure functions: dates, quiet hours, DST, catch-up."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from study.visits import (
    CLOSE,
    PROMPT,
    Decision,
    ExistingVisit,
    ScheduleRules,
    add_months,
    after_quiet_hours,
    decide,
    first_action_at,
    in_quiet_hours,
    plan_visits,
    replan,
    stage_instant,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
RULES = ScheduleRules()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def test_month_end_rolls_back_to_the_last_day_of_the_month() -> None:
    assert add_months(dt.date(2025, 11, 30), 3) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2027, 11, 30), 3) == dt.date(2028, 2, 29)
    assert add_months(dt.date(2026, 8, 31), 1) == dt.date(2026, 9, 30)


def test_each_visit_is_counted_from_enrolment_so_rollover_does_not_drift() -> None:
    visits = plan_visits(dt.date(2025, 11, 30), RULES)
    dues = [v.due_date for v in visits[:4]]
    assert dues == [dt.date(2026, 2, 28), dt.date(2026, 5, 30), dt.date(2026, 8, 30),
                    dt.date(2026, 11, 30)]  # fmt: skip


def test_plan_stops_at_the_study_end_and_windows_are_fourteen_days() -> None:
    visits = plan_visits(dt.date(2026, 1, 15), RULES)
    assert visits[0].number == 1 and visits[0].due_date == dt.date(2026, 4, 15)
    assert visits[-1].due_date <= RULES.study_end
    assert add_months(visits[-1].due_date, 3) > RULES.study_end
    assert all(v.window_closes_on - v.due_date == dt.timedelta(days=14) for v in visits)


@given(st.dates(dt.date(2025, 9, 30), dt.date(2028, 12, 31)), st.integers(1, 12))
def test_plan_is_increasing_and_inside_the_study(enrolled: dt.date, months: int) -> None:
    rules = ScheduleRules(interval_months=months)
    visits = plan_visits(enrolled, rules)
    assert [v.number for v in visits] == list(range(1, len(visits) + 1))
    dues = [v.due_date for v in visits]
    assert dues == sorted(set(dues))
    assert all(enrolled < d <= rules.study_end for d in dues)
    assert all(abs((add_months(enrolled, v.number * months) - v.due_date).days) == 0
               for v in visits)  # fmt: skip


@given(st.times(), st.times(), st.times())
def test_quiet_hours_wrap_midnight(t: dt.time, start: dt.time, end: dt.time) -> None:
    quiet = in_quiet_hours(t, (start, end))
    if start == end:
        assert not quiet
    elif start < end:
        assert quiet == (start <= t < end)
    else:
        assert quiet == (not end <= t < start)


def test_a_prompt_falling_in_quiet_hours_waits_for_the_morning() -> None:
    late = utc(2026, 4, 15, 14)  # 22:00 in Shanghai
    assert after_quiet_hours(late, SHANGHAI, (dt.time(21), dt.time(8))) == utc(2026, 4, 16, 0)
    early = utc(2026, 4, 15, 22)  # 06:00 on the 16th
    assert after_quiet_hours(early, SHANGHAI, (dt.time(21), dt.time(8))) == utc(2026, 4, 16, 0)
    day = utc(2026, 4, 15, 4)
    assert after_quiet_hours(day, SHANGHAI, (dt.time(21), dt.time(8))) == day


def test_send_hour_is_local_across_daylight_saving_time() -> None:
    winter = stage_instant(PROMPT, dt.date(2026, 3, 7), NEW_YORK, RULES)
    summer = stage_instant(PROMPT, dt.date(2026, 3, 9), NEW_YORK, RULES)
    assert winter == utc(2026, 3, 7, 15) and summer == utc(2026, 3, 9, 14)
    assert first_action_at(dt.date(2026, 4, 15), SHANGHAI, RULES) == utc(2026, 4, 15, 2)


def _decide(
    stage: str, now: dt.datetime, *, participant_status: str = "active", may_message: bool = True
) -> Decision:
    return decide(stage=stage, due_date=dt.date(2026, 4, 15), zone=SHANGHAI, rules=RULES,
                  now=now, participant_status=participant_status,
                  may_message=may_message)  # fmt: skip


def test_prompt_then_reminders_then_close() -> None:
    d = _decide(PROMPT, utc(2026, 4, 15, 2))
    assert (d.send, d.status, d.stage, d.at) == (PROMPT, "open", "reminder1", utc(2026, 4, 18, 2))
    d = _decide("reminder1", utc(2026, 4, 18, 2))
    assert (d.send, d.stage, d.at) == ("reminder1", "reminder2", utc(2026, 4, 22, 2))
    d = _decide("reminder2", utc(2026, 4, 22, 2))
    assert (d.send, d.stage, d.at) == ("reminder2", CLOSE, utc(2026, 4, 29, 16))
    assert _decide(CLOSE, utc(2026, 4, 29, 15, 59)).status is None  # the last day is open
    d = _decide(CLOSE, utc(2026, 4, 29, 16))  # midnight in Shanghai
    assert d.missed and d.status == "missed" and d.send is None


def test_catch_up_sends_a_late_prompt_once_and_skips_overdue_reminders() -> None:
    d = _decide(PROMPT, utc(2026, 4, 19, 3))  # down for four days
    assert d.send == PROMPT and d.stage == "reminder2"
    d = _decide(PROMPT, utc(2026, 4, 30, 3))  # down past the window
    assert d.missed and d.send is None


def test_catch_up_in_quiet_hours_waits_for_the_morning() -> None:
    d = _decide(PROMPT, utc(2026, 4, 15, 15))  # 23:00 local
    assert d.send is None and d.stage == PROMPT and d.at == utc(2026, 4, 16, 0)


def test_withdrawn_or_deceased_cancels_and_unreachable_holds() -> None:
    assert _decide(PROMPT, utc(2026, 4, 15, 2), participant_status="withdrawn").cancelled
    assert _decide("reminder1", utc(2026, 4, 18, 2), participant_status="deceased").cancelled
    held = _decide(PROMPT, utc(2026, 4, 15, 2), may_message=False)
    assert held.send is None and held.stage == PROMPT and held.at == utc(2026, 4, 15, 3)
    assert _decide(PROMPT, utc(2026, 4, 29, 16), may_message=False).missed


def test_replan_touches_only_future_planned_visits_and_never_creates_past_ones() -> None:
    old = plan_visits(dt.date(2026, 1, 15), RULES)
    today = dt.date(2026, 5, 1)
    existing = [ExistingVisit(1, "missed", old[0].due_date)] + [
        ExistingVisit(v.number, "planned", v.due_date) for v in old[1:]
    ]
    new = plan_visits(dt.date(2026, 1, 15), ScheduleRules(interval_months=2))
    change = replan(existing, new, today)
    assert 1 not in [v.number for v in change.update]
    assert all(v.due_date >= today for v in change.update + change.insert)
    assert all(n > 1 for n in change.cancel)


def test_first_plan_keeps_a_visit_whose_window_is_still_open() -> None:
    plan = plan_visits(dt.date(2026, 1, 15), RULES)
    change = replan([], plan, dt.date(2026, 4, 20))
    assert change.insert[0].number == 1
    assert replan([], plan, dt.date(2026, 4, 29)).insert[0].number == 1  # its last day
    assert replan([], plan, dt.date(2026, 4, 30)).insert[0].number == 2
