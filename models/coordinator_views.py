"""What coordinators look at: open alerts, due and missed visits, one participant's timeline.

Rows carry study ids, never Telegram ids or names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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


def alert_rows(session: Session, *, only_open: bool = True) -> list[AlertRow]:
    query = (
        select(Alert, Participant.study_id, Visit.number)
        .join(Participant, col(Participant.id) == col(Alert.participant_id), isouter=True)
        .join(Visit, col(Visit.id) == col(Alert.visit_id), isouter=True)
    )
    if only_open:
        query = query.where(col(Alert.status) != AlertStatus.RESOLVED)
    rows = session.exec(query.order_by(col(Alert.id))).all()
    return [
        AlertRow(a.id or 0, a.tier, a.status, a.kind, study or "-", number, a.created_at)
        for a, study, number in rows
    ]


def visit_rows(session: Session, *, today: dt.date) -> list[VisitRow]:
    """Visits due within a week or open, overdue ones, and those missed in the last 30 days."""
    query = (
        select(Participant.study_id, Visit)
        .join(Participant, col(Participant.id) == col(Visit.participant_id))
        .where(
            (col(Visit.status) == VisitStatus.OPEN)
            | ((col(Visit.status) == VisitStatus.PLANNED)
               & (col(Visit.due_date) <= today + DUE_AHEAD))
            | ((col(Visit.status) == VisitStatus.MISSED)
               & (col(Visit.window_closes_on) >= today - MISSED_BACK))
        )
        .order_by(col(Visit.due_date), col(Participant.study_id))
    )  # fmt: skip
    rows = []
    for study_id, visit in session.exec(query).all():
        if visit.status == VisitStatus.MISSED:
            state = "missed"
        elif visit.status == VisitStatus.OPEN and visit.due_date < today:
            state = "overdue"
        else:
            state = "due"
        rows.append(VisitRow(study_id, visit.number, visit.due_date, state))
    return rows


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
