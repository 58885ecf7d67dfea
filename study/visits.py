"""The visit plan and when each of a visit's messages falls due: pure functions of dates and now.

A visit moves through stages: "prompt", then "reminder1", "reminder2" … and finally "close",
when the window closes and an unanswered visit becomes missed. Each stage is due at the send
hour, in the participant's own time zone, on the due date plus that stage's day offset.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

PROMPT = "prompt"
CLOSE = "close"
DONE = "done"
HOLD = dt.timedelta(hours=1)  # how long a visit waits before asking again whether it may send
INACTIVE = frozenset({"withdrawn", "deceased"})  # statuses that cancel every remaining visit


@dataclass(frozen=True)
class ScheduleRules:
    """The schedule settings, as plain data."""

    interval_months: int = 3
    send_hour: int = 10
    reminder_days: tuple[int, ...] = (3, 7)
    window_days: int = 14
    quiet_start: dt.time = dt.time(21)
    quiet_end: dt.time = dt.time(8)
    study_end: dt.date = dt.date(2028, 12, 31)

    def plan_key(self) -> str:
        """What the visit dates and due instants depend on; a change means a re-plan."""
        reminders = ",".join(str(d) for d in self.reminder_days)
        return (
            f"m{self.interval_months}:w{self.window_days}:r{reminders}:h{self.send_hour}:"
            f"q{self.quiet_start:%H%M}-{self.quiet_end:%H%M}:e{self.study_end.isoformat()}"
        )


@dataclass(frozen=True)
class PlannedVisit:
    number: int
    due_date: dt.date
    window_closes_on: dt.date


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus whole calendar months; a day the month lacks rolls back to its last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def plan_visits(enrolled_on: dt.date, rules: ScheduleRules) -> list[PlannedVisit]:
    """Visits at enrolment + 3, 6, 9 … months, each counted from enrolment, until the study end."""
    visits = []
    number = 1
    while (due := add_months(enrolled_on, number * rules.interval_months)) <= rules.study_end:
        closes = due + dt.timedelta(days=rules.window_days)
        visits.append(PlannedVisit(number, due, closes))
        number += 1
    return visits


@dataclass(frozen=True)
class ExistingVisit:
    number: int
    status: str
    due_date: dt.date


@dataclass(frozen=True)
class Replan:
    insert: list[PlannedVisit]
    update: list[PlannedVisit]
    cancel: list[int]


def replan(
    existing: Sequence[ExistingVisit], plan: Sequence[PlannedVisit], today: dt.date
) -> Replan:
    """Bring the stored visits in line with `plan`, touching only future, still-planned ones.

    A first plan (no visits yet) also keeps a visit whose window is still open today, so a
    participant enrolled late is asked for it; a re-plan never creates a visit in the past.
    """
    by_number = {v.number: v for v in existing}
    first = not existing
    insert, update = [], []
    for visit in plan:
        old = by_number.get(visit.number)
        if old is None:
            if visit.due_date >= today or (first and visit.window_closes_on >= today):
                insert.append(visit)
        elif (
            old.status == "planned"
            and min(old.due_date, visit.due_date) >= today
            and old.due_date != visit.due_date
        ):
            update.append(visit)
    numbers = {v.number for v in plan}
    cancel = [
        v.number
        for v in existing
        if v.status == "planned" and v.due_date >= today and v.number not in numbers
    ]
    return Replan(insert, update, cancel)


# ---- when things fall due ---------------------------------------------------------------------


def in_quiet_hours(local: dt.time, window: tuple[dt.time, dt.time]) -> bool:
    """Whether a local wall-clock time is inside quiet hours, which may wrap past midnight."""
    start, end = window
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def after_quiet_hours(
    now: dt.datetime, zone: ZoneInfo, window: tuple[dt.time, dt.time]
) -> dt.datetime:
    """`now` if it is outside quiet hours locally, else the instant quiet hours end."""
    local = now.astimezone(zone)
    if not in_quiet_hours(local.time().replace(tzinfo=None), window):
        return now
    end = window[1]
    day = (
        local.date() if local.time().replace(tzinfo=None) < end else local.date() + dt.timedelta(1)
    )
    return dt.datetime.combine(day, end, tzinfo=zone).astimezone(dt.UTC)


def local_instant(day: dt.date, hour: int, zone: ZoneInfo) -> dt.datetime:
    """`hour`:00 on `day` in `zone`, as a UTC instant (DST gaps resolve forwards)."""
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zone).astimezone(dt.UTC)


def stage_offsets(rules: ScheduleRules) -> list[tuple[str, int]]:
    """Each stage and its day offset from the due date, in order."""
    return list(_stage_offsets(rules))


@cache
def _stage_offsets(rules: ScheduleRules) -> tuple[tuple[str, int], ...]:
    reminders = [(f"reminder{i}", d) for i, d in enumerate(rules.reminder_days, start=1)]
    return ((PROMPT, 0), *reminders, (CLOSE, rules.window_days))


# A pass decides thousands of visits that share a handful of due dates, zones and stages.
@lru_cache(maxsize=4096)
def stage_instant(
    stage: str, due_date: dt.date, zone: ZoneInfo, rules: ScheduleRules
) -> dt.datetime:
    """When a stage falls due: the send hour, local, on the due date plus the stage's offset.

    The close stage is the end of the window instead (`window_closes_at`).
    """
    if stage == CLOSE:
        return window_closes_at(due_date, zone, rules)
    offset = dict(_stage_offsets(rules))[stage]
    return local_instant(due_date + dt.timedelta(days=offset), rules.send_hour, zone)


@lru_cache(maxsize=4096)
def window_closes_at(due_date: dt.date, zone: ZoneInfo, rules: ScheduleRules) -> dt.datetime:
    """The end of the window: midnight, local, after the whole of `window_closes_on`.

    `Visit.window_closes_on` (due date + window days) is the window's last day, for the
    check-in as for the schedule: a check-in can be finished until that day ends.
    """
    day_after = due_date + dt.timedelta(days=rules.window_days + 1)
    return dt.datetime.combine(day_after, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def first_action_at(due_date: dt.date, zone: ZoneInfo, rules: ScheduleRules) -> dt.datetime:
    """When a planned visit first needs the dispatch pass: its prompt, moved out of quiet hours."""
    window = (rules.quiet_start, rules.quiet_end)
    return after_quiet_hours(stage_instant(PROMPT, due_date, zone, rules), zone, window)


@dataclass(frozen=True)
class Decision:
    """What the dispatch pass does with one due visit."""

    send: str | None = None  # the stage whose message goes out now
    status: str | None = None  # the visit's new status, if it changes
    stage: str = DONE  # the next stage
    at: dt.datetime | None = None  # when the next stage falls due
    missed: bool = False
    cancelled: bool = False


def decide(
    *,
    stage: str,
    due_date: dt.date,
    zone: ZoneInfo,
    rules: ScheduleRules,
    now: dt.datetime,
    participant_status: str,
    may_message: bool,
) -> Decision:
    """Decide what a visit at `stage` needs as of `now`.

    At most one message per visit per pass: a late prompt goes out on its own, and a reminder
    that was held back gives way to a later one that is also overdue. Nothing is dropped
    silently: an unanswered window always ends as a missed visit handed to a coordinator.
    """
    if participant_status in INACTIVE:
        return Decision(status="cancelled", cancelled=True)
    close_at = window_closes_at(due_date, zone, rules)
    status = "open" if stage == PROMPT else None
    if now >= close_at:
        return Decision(status="missed", missed=True)
    if stage == CLOSE:
        return Decision(stage=CLOSE, at=close_at)
    stage_at = (
        first_action_at(due_date, zone, rules)
        if stage == PROMPT
        else stage_instant(stage, due_date, zone, rules)
    )
    if now < stage_at:  # looked at early (e.g. woken when the chat was linked): nothing is due
        return Decision(stage=stage, at=stage_at)
    local_today = now.astimezone(zone).date()
    if not may_message or local_today > rules.study_end:
        return Decision(status=status, stage=stage, at=min(now + HOLD, close_at))
    quiet_end = after_quiet_hours(now, zone, (rules.quiet_start, rules.quiet_end))
    if quiet_end != now:
        return Decision(status=status, stage=stage, at=min(quiet_end, close_at))
    stages = [(s, stage_instant(s, due_date, zone, rules)) for s, _ in stage_offsets(rules)]
    names = [s for s, _ in stages]
    later = stages[names.index(stage) :]
    overdue = [s for s, at in later if at <= now and s != CLOSE]
    send = stage if stage == PROMPT else (overdue[-1] if overdue else stage)
    upcoming = [(s, at) for s, at in later if at > now]
    next_stage, at = upcoming[0] if upcoming else (CLOSE, close_at)
    return Decision(send=send, status=status, stage=next_stage, at=at)
