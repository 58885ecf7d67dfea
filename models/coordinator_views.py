"""What coordinators look at: open alerts, due and missed visits, one participant's timeline.

Rows carry study ids, never Telegram ids or names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select as core_select
from sqlalchemy import union_all
from sqlmodel import Session, col, select

from models.checkin_tables import CheckIn
from models.checkins import current_answers
from models.consent import ConsentEvent
from models.tables import Alert, AlertStatus, Participant, Visit, VisitStatus

DUE_AHEAD = dt.timedelta(days=7)
MISSED_BACK = dt.timedelta(days=30)


@dataclass(frozen=True)
class AlertRow:
    id: int
    tier: str
    status: str
    kind: str
    study_id: str
    visit: int | None
    created_at: dt.datetime


@dataclass(frozen=True)
class VisitRow:
    study_id: str
    visit: int
    due_date: dt.date
    state: str  # due, overdue or missed


def alert_rows(
    session: Session, *, only_open: bool = True, last: int | None = None
) -> list[AlertRow]:
    """Alerts oldest first; with `last`, only the newest `last` of them (still oldest first)."""
    query = (
        select(Alert, Participant.study_id, Visit.number)
        .join(Participant, col(Participant.id) == col(Alert.participant_id), isouter=True)
        .join(Visit, col(Visit.id) == col(Alert.visit_id), isouter=True)
    )
    if only_open:
        query = query.where(col(Alert.status) != AlertStatus.RESOLVED)
    if last is not None:
        newest = session.exec(query.order_by(col(Alert.id).desc()).limit(last)).all()
        rows = list(reversed(newest))
    else:
        rows = list(session.exec(query.order_by(col(Alert.id))).all())
    return [
        AlertRow(a.id or 0, a.tier, a.status, a.kind, study or "-", number, a.created_at)
        for a, study, number in rows
    ]


def visit_rows(session: Session, *, today: dt.date, first: int | None = None) -> list[VisitRow]:
    """Visits due within a week or open, overdue ones, and those missed in the last 30 days.

    By due date; with `first`, only the first `first` of them. Each status is read from its
    own index range in due-date order and stops at `first`, and the few rows found are then
    put in order once more, in the database (its collation, as before): the three conditions
    OR'd in one query made SQLite gather and sort every open, due and recently missed visit
    (89 ms of the send-hour pass's digest at 100,000 participants, for 60 rows;
    docs/benchmarks.md, figure 3).
    """
    by_status = (
        (col(Visit.status) == VisitStatus.OPEN),
        (col(Visit.status) == VisitStatus.PLANNED) & (col(Visit.due_date) <= today + DUE_AHEAD),
        (col(Visit.status) == VisitStatus.MISSED)
        & (col(Visit.window_closes_on) >= today - MISSED_BACK),
    )
    runs = []
    for condition in by_status:
        run = (
            core_select(
                col(Participant.study_id),
                col(Visit.number),
                col(Visit.due_date),
                col(Visit.status),
            )
            .join(Participant, col(Participant.id) == col(Visit.participant_id))
            .where(condition)
        )
        if first is not None:
            run = run.order_by(*_VISIT_ORDER).limit(first)
        runs.append(core_select(run.subquery()))
    merged = union_all(*runs).subquery()
    query = core_select(merged).order_by(merged.c.due_date, merged.c.study_id, merged.c.number)
    if first is not None:
        query = query.limit(first)
    rows = []
    for study_id, number, due_date, status in session.execute(query).all():
        if status == VisitStatus.MISSED:
            state = "missed"
        elif status == VisitStatus.OPEN and due_date < today:
            state = "overdue"
        else:
            state = "due"
        rows.append(VisitRow(study_id, number, due_date, state))
    return rows


_VISIT_ORDER = (col(Visit.due_date), col(Participant.study_id), col(Visit.number))


@dataclass(frozen=True)
class Event:
    at: dt.datetime
    what: str  # visit, checkin, alert or consent
    text: str


def timeline(session: Session, participant: Participant) -> list[Event]:
    """Visits, check-ins with their answers in brief, alerts and consent events, oldest first."""
    assert participant.id is not None
    pid = participant.id
    events: list[Event] = []
    for visit in session.exec(select(Visit).where(Visit.participant_id == pid)).all():
        at = visit.completed_at or dt.datetime.combine(visit.due_date, dt.time(), dt.UTC)
        events.append(Event(at, "visit", f"visit {visit.number} due {visit.due_date}: "
                                          f"{visit.status}"))  # fmt: skip
    for checkin in session.exec(select(CheckIn).where(CheckIn.participant_id == pid)).all():
        answers = current_answers(session, checkin.id or 0)
        brief = ", ".join(f"{k}={v}" for k, v in sorted(answers.items()) if len(v) <= 12)
        events.append(Event(checkin.completed_at or checkin.started_at, "checkin",
                            f"check-in v{checkin.version} {checkin.status}: {brief}"))  # fmt: skip
    for alert in session.exec(select(Alert).where(Alert.participant_id == pid)).all():
        events.append(Event(alert.created_at, "alert",
                            f"#{alert.id} {alert.tier} {alert.kind}: {alert.status}"))  # fmt: skip
    consent = session.exec(select(ConsentEvent).where(ConsentEvent.participant_id == pid)).all()
    for event in consent:
        events.append(Event(event.at, "consent", f"{event.change} {event.scope} "
                                                 f"({event.channel})"))  # fmt: skip
    return sorted(events, key=lambda e: e.at)
