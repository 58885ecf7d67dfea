"""Query functions for check-ins: start or resume, store each answer at once, finish, export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select, update

from models import audit
from models.checkin_tables import CheckIn, CheckInAnswer, CheckInStatus
from models.locks import remember_checkin
from models.tables import (
    OutboxMessage,
    Participant,
    ParticipantStatus,
    Visit,
    VisitStatus,
)

__all__ = ["CheckIn", "CheckInAnswer", "CheckInStatus"]


def open_visit_for(session: Session, *, participant_id: int, today: dt.date) -> Visit | None:
    """The participant's earliest open visit whose window has not closed by `today`."""
    query = (
        select(Visit)
        .where(
            Visit.participant_id == participant_id,
            Visit.status == VisitStatus.OPEN,
            col(Visit.window_closes_on) >= today,
        )
        .order_by(col(Visit.due_date))
    )
    return session.exec(query).first()


def open_visit(
    session: Session,
    *,
    participant_id: int,
    number: int,
    due_date: dt.date,
    window_closes_on: dt.date,
    now: dt.datetime,
) -> Visit:
    """Add an open visit directly: for the demo and tests; the schedule opens them in real use."""
    visit = Visit(
        participant_id=participant_id,
        number=number,
        due_date=due_date,
        window_closes_on=window_closes_on,
        status=VisitStatus.OPEN,
        created_at=now,
    )
    session.add(visit)
    session.flush()
    return visit


def checkin_for_visit(session: Session, visit_id: int) -> CheckIn | None:
    return session.exec(select(CheckIn).where(CheckIn.visit_id == visit_id)).first()


def in_progress_checkin(session: Session, *, participant_id: int) -> CheckIn | None:
    query = select(CheckIn).where(
        CheckIn.participant_id == participant_id, CheckIn.status == CheckInStatus.IN_PROGRESS
    )
    found = session.exec(query.order_by(col(CheckIn.id).desc()).with_for_update()).first()
    return remember_checkin(session, found)


def start_checkin(
    session: Session, *, visit: Visit, instrument: str, version: int, now: dt.datetime
) -> CheckIn:
    """The visit's check-in, created under `version` the first time; later calls return it."""
    assert visit.id is not None
    existing = checkin_for_visit(session, visit.id)
    if existing is not None:
        return existing
    checkin = CheckIn(
        visit_id=visit.id,
        participant_id=visit.participant_id,
        instrument=instrument,
        version=version,
        started_at=now,
        updated_at=now,
    )
    session.add(checkin)
    session.flush()
    return checkin


# Built once (every answer reads them): a prebuilt statement's cache key is memoised.
_CURRENT_ANSWERS = select(CheckInAnswer.item, CheckInAnswer.value).where(
    CheckInAnswer.checkin_id == bindparam("checkin_id"), col(CheckInAnswer.current)
)


def current_answers(session: Session, checkin_id: int) -> dict[str, str]:
    """Item id to coded value, for the answers that stand."""
    rows = session.exec(_CURRENT_ANSWERS, params={"checkin_id": checkin_id}).all()
    return {item: value for item, value in rows}


# An answer's row and the check-in's next step are written with statements built once, on the
# tables rather than through the unit of work: every answer writes both, and the ORM's flush of
# one new object and one changed one cost more than the two statements (docs/benchmarks.md).
_ANSWER_TABLE = CheckInAnswer.__table__  # type: ignore[attr-defined]
_CHECKIN_TABLE = CheckIn.__table__  # type: ignore[attr-defined]
_INSERT_ANSWER = insert(_ANSWER_TABLE).values(
    {name: bindparam(name) for name in ("checkin_id", "item", "value", "raw", "respondent",
                                        "instrument_version", "answered_at", "current")}
)  # fmt: skip
_STEPPED = ("current_item", "draft", "step", "updated_at", "last_update_id")
_MOVE_TO = (
    update(_CHECKIN_TABLE)
    .where(_CHECKIN_TABLE.c.id == bindparam("checkin_id"))
    .values({name: bindparam(name) for name in _STEPPED})
)


def record_answer(
    session: Session,
    *,
    checkin: CheckIn,
    item: str,
    value: str,
    raw: str | None,
    respondent: str | None,
    now: dt.datetime,
    replaces: bool = True,
) -> None:
    """Store one answer now, retiring any earlier answer to the same item. `replaces` False
    says there is none standing (the caller read the current answers in this transaction)."""
    assert checkin.id is not None
    if replaces:
        retire_answers(session, checkin_id=checkin.id, items=[item])
    session.connection().execute(  # no autoflush: the row depends on nothing pending
        _INSERT_ANSWER,
        {
            "checkin_id": checkin.id,
            "item": item,
            "value": value,
            "raw": raw,
            "respondent": respondent,
            "instrument_version": f"{checkin.instrument}-v{checkin.version}",
            "answered_at": now,
            "current": True,
        },
    )


def retire_answers(session: Session, *, checkin_id: int, items: Iterable[str]) -> None:
    """Answers that no longer count (changed, or to items no longer asked) stay, not current."""
    names = list(items)
    if names:
        session.execute(
            update(CheckInAnswer)
            .where(
                col(CheckInAnswer.checkin_id) == checkin_id,
                col(CheckInAnswer.item).in_(names),
                col(CheckInAnswer.current),
            )
            .values(current=False)
        )


def move_to(
    session: Session, *, checkin: CheckIn, item: str | None, draft: str | None, now: dt.datetime
) -> int:
    """Show `item` (None: the summary) as the next step; returns that step's number.

    Written at once, with the update this check-in last acted on (`last_update_id`); the
    object then holds what its row holds, so the unit of work has nothing of these to flush.
    """
    assert checkin.id is not None
    values = {
        "current_item": item,
        "draft": draft,
        "step": checkin.step + 1,
        "updated_at": now,
        "last_update_id": checkin.last_update_id,
    }
    session.connection().execute(_MOVE_TO, {"checkin_id": checkin.id, **values})
    for name, value in values.items():
        set_committed_value(checkin, name, value)
    return checkin.step


def finish_checkin(
    session: Session, *, checkin: CheckIn, visit: Visit, status: CheckInStatus, now: dt.datetime
) -> None:
    """End the check-in and complete its visit by chat, so no reminder follows."""
    checkin.status = status
    checkin.completed_at = checkin.updated_at = now
    checkin.current_item = None
    checkin.step += 1
    session.add(checkin)
    if visit.status == VisitStatus.OPEN:
        visit.status = VisitStatus.COMPLETED
        visit.completed_at = now
        visit.completion_mode = "chat"
        session.add(visit)
    participant = session.get(Participant, checkin.participant_id)
    assert participant is not None
    audit.record(
        session,
        at=now,
        actor=f"participant:{participant.study_id}",
        action=f"checkin.{status}",
        entity="visit",
        entity_id=f"{participant.study_id}:{visit.number}",
        after={"checkin_id": checkin.id, "version": checkin.version, "visit": visit.status},
    )


def report_death(
    session: Session, *, participant: Participant, checkin: CheckIn, now: dt.datetime
) -> None:
    """Mark a proxy's death report: no prompts go out until a coordinator confirms or corrects.

    The check-in (status death_reported, with its answers) is what the alert engine reads.
    """
    before = participant.status
    participant.status = ParticipantStatus.DEATH_REPORTED
    session.add(participant)
    audit.record(
        session,
        at=now,
        actor=f"proxy:{participant.study_id}",
        action="participant.death_reported",
        entity="participant",
        entity_id=participant.study_id,
        before={"status": before},
        after={"status": participant.status, "checkin_id": checkin.id},
    )


def shown_message(session: Session, *, purpose: str) -> tuple[int, int] | None:
    """(chat id, Telegram message id) of a sent outbox message, or None if it was not sent."""
    query = select(OutboxMessage.chat_id, OutboxMessage.telegram_message_id).where(
        OutboxMessage.purpose == purpose
    )
    row = session.exec(query).first()
    if row is None or row[1] is None:
        return None
    return row[0], row[1]


def death_reports(session: Session) -> list[tuple[Participant, CheckIn]]:
    """Check-ins that ended in a proxy's death report, for the alert engine and coordinators."""
    query = (
        select(Participant, CheckIn)
        .join(CheckIn, col(CheckIn.participant_id) == col(Participant.id))
        .where(CheckIn.status == CheckInStatus.DEATH_REPORTED)
        .order_by(col(CheckIn.completed_at))
    )
    return [(p, c) for p, c in session.exec(query).all()]


@dataclass(frozen=True)
class ExportRow:
    study_id: str
    visit: int
    due_date: dt.date
    checkin_status: str
    instrument: str
    version: int
    item: str
    value: str
    answered_at: dt.datetime
    respondent: str | None
    mode: str


def export_rows(session: Session, *, since: dt.datetime | None = None) -> list[ExportRow]:
    """Every standing answer, one row each, in study id, visit and answer order."""
    query = (
        select(Participant.study_id, Visit, CheckIn, CheckInAnswer)
        .join(Visit, col(Visit.participant_id) == col(Participant.id))
        .join(CheckIn, col(CheckIn.visit_id) == col(Visit.id))
        .join(CheckInAnswer, col(CheckInAnswer.checkin_id) == col(CheckIn.id))
        .where(col(CheckInAnswer.current))
        .order_by(col(Participant.study_id), col(Visit.number), col(CheckInAnswer.id))
    )
    if since is not None:
        query = query.where(col(CheckInAnswer.answered_at) >= since)
    return [
        ExportRow(
            study_id=study_id,
            visit=visit.number,
            due_date=visit.due_date,
            checkin_status=checkin.status,
            instrument=checkin.instrument,
            version=checkin.version,
            item=answer.item,
            value=answer.value,
            answered_at=answer.answered_at,
            respondent=answer.respondent,
            mode=visit.completion_mode or "chat",
        )
        for study_id, visit, checkin, answer in session.exec(query).all()
    ]
