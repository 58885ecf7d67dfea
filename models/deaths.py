"""A coordinator confirms or rejects a reported death; a confirmed death stops contact for good."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col

from models import audit, visits
from models.locks import lock_participant
from models.participants import participant_by_study_id
from models.tables import (
    Alert,
    AlertStatus,
    OutboxMessage,
    OutboxStatus,
    ParticipantStatus,
)
from study.consent import CONDOLENCE_LIKE

DEATH_KIND = "death_reported"


class DeathError(Exception):
    """The participant is unknown, or not in a state this decision applies to."""


@dataclass(frozen=True)
class Decision:
    study_id: str
    status: str
    cancelled_visits: int = 0
    cancelled_messages: int = 0
    resolved_alerts: int = 0


def _resolve_death_alerts(session: Session, participant_id: int, *, by: str, note: str,
                          now: dt.datetime) -> int:  # fmt: skip
    resolved = session.execute(
        update(Alert)
        .where(
            col(Alert.participant_id) == participant_id,
            col(Alert.kind) == DEATH_KIND,
            col(Alert.status) != AlertStatus.RESOLVED,
        )
        .values(status=AlertStatus.RESOLVED, resolved_at=now, resolved_by=by[:64],
                resolution_note=note[:500], next_notice_at=None)
    )  # fmt: skip
    return int(resolved.rowcount)  # type: ignore[attr-defined]


def decide_death(
    session: Session, *, study_id: str, confirm: bool, by: str, now: dt.datetime,
    note: str | None = None,
) -> Decision:  # fmt: skip
    """Confirm: deceased, future visits and unsent messages cancelled. Reject: active again,
    and a condolence not yet sent cancelled."""
    found = participant_by_study_id(session, study_id)
    if found is None or found.id is None:
        raise DeathError(f"no participant {study_id}")
    participant = lock_participant(session, found.id)
    assert participant is not None and participant.id is not None
    before = participant.status
    allowed = (ParticipantStatus.DEATH_REPORTED, ParticipantStatus.ACTIVE) if confirm else (
        ParticipantStatus.DEATH_REPORTED,)  # fmt: skip
    if before not in allowed:
        raise DeathError(
            f"{study_id} is {before}; nothing to {'confirm' if confirm else 'reject'}"
        )
    participant.status = ParticipantStatus.DECEASED if confirm else ParticipantStatus.ACTIVE
    session.add(participant)
    cancelled_visits = cancelled_messages = 0
    if confirm:
        cancelled_visits = visits.cancel_remaining(session, participant.id)
        unsent = (
            col(OutboxMessage.participant_id) == participant.id,
            col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
        )
        cancelled = session.execute(
            update(OutboxMessage).where(*unsent).values(status=OutboxStatus.CANCELLED)
        )
        cancelled_messages = int(cancelled.rowcount)  # type: ignore[attr-defined]
    else:  # alive after all: a condolence still waiting to be sent must never go
        unsent_condolence = (
            col(OutboxMessage.participant_id) == participant.id,
            col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
            col(OutboxMessage.purpose).like(CONDOLENCE_LIKE),
        )
        cancelled = session.execute(
            update(OutboxMessage).where(*unsent_condolence).values(status=OutboxStatus.CANCELLED)
        )
        cancelled_messages = int(cancelled.rowcount)  # type: ignore[attr-defined]
    text = note or ("death confirmed" if confirm else "death report rejected")
    resolved = _resolve_death_alerts(session, participant.id, by=by, note=text, now=now)
    action = "participant.death_confirmed" if confirm else "participant.death_rejected"
    audit.record(
        session, at=now, actor=by, action=action,
        entity="participant", entity_id=study_id, before={"status": before},
        after={"status": participant.status, "visits_cancelled": cancelled_visits,
               "messages_cancelled": cancelled_messages, "note": note},
    )  # fmt: skip
    return Decision(study_id, participant.status, cancelled_visits, cancelled_messages, resolved)
