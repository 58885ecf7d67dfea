"""Query functions for visits: planning, what is due, guarded stage changes and completion."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, literal, or_, union_all, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from models import audit
from models.db import is_postgres
from models.tables import Participant, Visit, VisitStatus

ACTIVE_STATUSES = (VisitStatus.PLANNED.value, VisitStatus.OPEN.value)
COMPLETION_MODES = ("chat", "phone", "clinic")


class VisitNotFound(Exception):
    """No visit with that study id and number."""


class VisitClosed(Exception):
    """The visit is already completed, missed or cancelled."""


def participants_needing_plan(session: Session, *, key: str, limit: int) -> Sequence[Participant]:
    """Participants never planned, or planned under other settings.

    Three index range scans (NULL, below, above the key): SQLite would scan the whole table
    for the equivalent `OR`, and this runs on every pass.
    """
    found: list[Participant] = []
    for stale in (
        col(Participant.plan_key).is_(None),
        col(Participant.plan_key) < key,
        col(Participant.plan_key) > key,
    ):
        query = select(Participant).where(stale).limit(limit - len(found))
        if is_postgres(session.get_bind()):  # type: ignore[arg-type]
            query = query.with_for_update(skip_locked=True)
        found.extend(session.exec(query).all())
        if len(found) >= limit:
            break
    return found


def visits_of(session: Session, participant_id: int) -> Sequence[Visit]:
    query = select(Visit).where(Visit.participant_id == participant_id)
    return session.exec(query.order_by(col(Visit.number))).all()


def visits_of_many(session: Session, participant_ids: Sequence[int]) -> dict[int, list[Visit]]:
    """Each participant's visits by number, in one query for a whole planning batch."""
    found: dict[int, list[Visit]] = {pid: [] for pid in participant_ids}
    if participant_ids:
        query = select(Visit).where(col(Visit.participant_id).in_(participant_ids))
        for visit in session.exec(query.order_by(col(Visit.number))).all():
            found[visit.participant_id].append(visit)
    return found


def insert_visits(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add planned visits in one statement (a first plan writes a dozen per participant)."""
    if rows:
        session.execute(Visit.__table__.insert(), list(rows))  # type: ignore[attr-defined]


# Named tuples, not frozen dataclasses: the send-hour pass builds one of each per due visit, and
# a frozen dataclass sets each field through object.__setattr__ (four times the cost, 12 ms of
# that pass at 100,000 participants).
class DueVisit(NamedTuple):
    """What the dispatch pass reads of a due visit."""

    id: int
    number: int
    stage: str
    due_date: dt.date
    next_action_at: dt.datetime | None


class DueParticipant(NamedTuple):
    """What the dispatch pass reads of a due visit's participant (a `ContactState`)."""

    id: int
    study_id: str
    language: str
    timezone: str
    enrolled_on: dt.date
    status: str
    chat_contact: bool
    unreachable: bool
    telegram_chat_id: int | None


def due_visits(
    session: Session, *, now: dt.datetime, limit: int
) -> list[tuple[DueVisit, DueParticipant]]:
    """Active visits whose next stage is due as of `now`, oldest first (an index range scan).

    On PostgreSQL the rows are locked, skipping those another dispatcher holds, so two
    dispatchers share the work instead of queueing behind each other. The participant row is
    locked too: a pass must not decide on a participant whose chat is being linked (or who
    is withdrawing) in a transaction it cannot see yet; such visits wait for the next pass.

    Plain columns, not ORM objects: the pass only reads them and writes with bulk statements,
    and building ~4,400 pairs of ORM objects was a third of the 100,000-participant send-hour
    pass (docs/benchmarks.md).
    """
    v = Visit.__table__  # type: ignore[attr-defined]
    p = Participant.__table__  # type: ignore[attr-defined]
    # Labelled, so that the ORDER BY of a UNION can name them.
    columns = [v.c[name].label(f"visit_{name}")
               for name in ("id", "number", "stage", "due_date", "next_action_at")]  # fmt: skip
    columns += [
        p.c[name].label(f"participant_{name}")
        for name in ("id", "study_id", "language", "timezone", "enrolled_on", "status",
                     "chat_contact", "unreachable", "telegram_chat_id")
    ]  # fmt: skip
    # One ordered index range per status (`status IN (...)` made SQLite gather every due row and
    # sort them, per batch), taken oldest first across both.
    runs = [
        core_select(*columns)
        .join(p, p.c.id == v.c.participant_id)
        .where(v.c.status == visit_status, v.c.next_action_at <= now)
        for visit_status in ACTIVE_STATUSES
    ]
    rows: list[Any] = []
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        # FOR UPDATE is not allowed on a UNION: each range is locked on its own, up to `limit`.
        for run in runs:
            query = run.order_by(v.c.next_action_at, v.c.id).limit(limit)
            rows.extend(session.connection().execute(
                query.with_for_update(of=(v, p), skip_locked=True)
            ))  # fmt: skip
        rows.sort(key=lambda row: (row[4], row[0]))
    else:
        # SQLite merges the two ordered ranges as it reads them and stops at `limit`; reading
        # up to `limit` of each and merging here read twice the rows the batch takes, and
        # those reads were a sixth of the send-hour pass (docs/benchmarks.md, figure 3).
        both = union_all(*runs)
        oldest = (both.selected_columns.visit_next_action_at, both.selected_columns.visit_id)
        rows.extend(session.connection().execute(both.order_by(*oldest).limit(limit)))
    return [(DueVisit._make(row[:5]), DueParticipant._make(row[5:])) for row in rows[:limit]]


def wake(session: Session, *, participant_id: int, now: dt.datetime) -> int:
    """Have the next pass look at this participant's visits again at once.

    A visit that could not send (the chat was not linked yet, or Telegram refused) waits an
    hour before it asks again; when the participant links or writes back, it should not wait.
    The pass re-decides from the stage and the clock, so waking early changes no outcome.
    """
    result = session.execute(
        update(Visit)
        .where(
            col(Visit.participant_id) == participant_id,
            col(Visit.status).in_(ACTIVE_STATUSES),
            col(Visit.next_action_at) > now,
        )
        .values(next_action_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def advance(
    session: Session, visit: Visit, *, stage: str, at: dt.datetime | None, status: str | None
) -> bool:
    """Move a visit to its next stage if nobody else has since; True when this call did it."""
    values: dict[str, Any] = {"stage": stage, "next_action_at": at}
    if status is not None:
        values["status"] = status
    changed = session.execute(
        update(Visit)
        .where(
            col(Visit.id) == visit.id,
            col(Visit.stage) == visit.stage,
            col(Visit.next_action_at) == visit.next_action_at,
            col(Visit.status).in_(ACTIVE_STATUSES),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(changed.rowcount == 1)  # type: ignore[attr-defined]


class ConcurrentChange(Exception):
    """A visit locked for this transaction changed under it: the batch is rolled back."""


def advance_many(session: Session, moves: Sequence[tuple[DueVisit, str, dt.datetime | None,
                                                         str | None]]) -> None:  # fmt: skip
    """`advance` for many visits in one statement: (visit, stage, at, status) each.

    The caller has read the visits in this transaction (`due_visits`: locked on PostgreSQL,
    under SQLite's immediate write lock), so the guard cannot fail; should it anyway, this
    raises and the caller's transaction, with every outbox row it wrote, rolls back.
    """
    if not moves:
        return
    table = Visit.__table__  # type: ignore[attr-defined]
    statement = (
        table.update()
        .where(
            table.c.id == bindparam("b_id"),
            table.c.stage == bindparam("b_stage"),
            table.c.next_action_at == bindparam("b_at"),
            # `in_` expands at execution, which executemany cannot; the same test, spelt out.
            or_(*(table.c.status == literal(s) for s in ACTIVE_STATUSES)),
        )
        .values(
            stage=bindparam("new_stage"),
            next_action_at=bindparam("new_at"),
            status=func.coalesce(bindparam("new_status", type_=table.c.status.type),
                                 table.c.status),
        )
    )  # fmt: skip
    params = [
        {"b_id": visit.id, "b_stage": visit.stage, "b_at": visit.next_action_at,
         "new_stage": stage, "new_at": at, "new_status": status}
        for visit, stage, at, status in moves
    ]  # fmt: skip
    changed = session.connection().execute(statement, params)
    if changed.rowcount != len(moves):
        raise ConcurrentChange(f"{changed.rowcount} of {len(moves)} visits advanced")


def cancel_remaining(session: Session, participant_id: int) -> int:
    """Cancel every planned or open visit of a participant; return how many."""
    changed = session.execute(
        update(Visit)
        .where(col(Visit.participant_id) == participant_id, col(Visit.status).in_(ACTIVE_STATUSES))
        .values(status=VisitStatus.CANCELLED.value, stage="done", next_action_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(changed.rowcount)  # type: ignore[attr-defined]


def visit_by_number(session: Session, participant_id: int, number: int) -> Visit | None:
    query = select(Visit).where(Visit.participant_id == participant_id, Visit.number == number)
    return session.exec(query).first()


def next_visit(session: Session, participant_id: int) -> Visit | None:
    """The participant's open visit, or else their next planned one."""
    query = (
        select(Visit)
        .where(Visit.participant_id == participant_id, col(Visit.status).in_(ACTIVE_STATUSES))
        .order_by(col(Visit.number))
        .limit(1)
    )
    return session.exec(query).first()


def complete_visit(
    session: Session, *, visit: Visit, study_id: str, mode: str, now: dt.datetime, actor: str,
    note: str | None = None,
) -> None:  # fmt: skip
    """Record a follow-up as done; its reminders and its missed hand-over stop. Audited."""
    if mode not in COMPLETION_MODES:
        raise ValueError(f"mode must be one of {COMPLETION_MODES}")
    if visit.status not in ACTIVE_STATUSES:
        raise VisitClosed(visit.status)
    before = {"status": visit.status, "stage": visit.stage}
    visit.status = VisitStatus.COMPLETED
    visit.stage = "done"
    visit.next_action_at = None
    visit.completed_at = now
    visit.completion_mode = mode
    visit.note = note
    session.add(visit)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="visit.completed",
        entity="visit",
        entity_id=f"{study_id}:{visit.number}",
        before=before,
        after={"status": visit.status, "mode": mode, "note": bool(note)},
    )


def list_visits(
    session: Session, *, statuses: Sequence[str] | None = None, due_by: dt.date | None = None,
    closes_before: dt.date | None = None,
) -> list[tuple[Visit, Participant]]:  # fmt: skip
    """Visits with their participants, by due date, narrowed by status and dates."""
    query = select(Visit, Participant).join(
        Participant, col(Participant.id) == col(Visit.participant_id)
    )
    if statuses:
        query = query.where(col(Visit.status).in_(statuses))
    if due_by is not None:
        query = query.where(col(Visit.due_date) <= due_by)
    if closes_before is not None:
        query = query.where(col(Visit.window_closes_on) <= closes_before)
    query = query.order_by(col(Visit.due_date), col(Participant.study_id), col(Visit.number))
    return [(visit, participant) for visit, participant in session.exec(query).all()]
