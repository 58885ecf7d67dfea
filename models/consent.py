"""Consent events (append-only) and the one transaction that withdraws or restores a scope."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Column, Text, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from models import alerts, audit, outbox, visits
from models.db import transaction
from models.locks import lock_participant
from models.tables import AlertTier, OutboxMessage, OutboxStatus, Participant, ParticipantStatus
from models.types import UTCDateTime
from study.consent import (
    AFTER_WITHDRAWAL_PURPOSES,
    Change,
    ConsentError,
    ConsentState,
    Samples,
    Scope,
    apply,
    derive,
)

log = logging.getLogger(__name__)

Render = Callable[..., str]  # messages.render.render(name, language, **context)


class ConsentEvent(SQLModel, table=True):
    """One withdrawal or re-consent for one scope. Rows are only ever added, never changed."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    scope: str = Field(max_length=16)  # contact, biospecimen or study
    change: str = Field(max_length=8)  # withdraw or restore
    actor: str = Field(max_length=16)  # participant, coordinator or system
    actor_id: str = Field(max_length=64)  # e.g. "participant:P001", "coordinator:cli"
    channel: str = Field(max_length=16)  # chat, phone, in_person or cli
    samples: str | None = Field(default=None, max_length=8)  # destroy or keep (biospecimen)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # reason/note
    at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SendInFlight(Exception):
    """A message to this participant is being handed to Telegram; try again in a moment."""


T = TypeVar("T")


def with_sends_settled(
    engine: Engine, work: Callable[[Session, bool], T], *, tries: int = 200, pause: float = 0.02
) -> T:
    """Run `work(session, wait_for_sends)` in one transaction, again while a send is in flight.

    A send takes a fraction of a second, so this commits only after it is recorded; after
    `tries` the last attempt goes ahead and records the message as possibly delivered.
    """
    for attempt in range(tries):
        try:
            with transaction(engine) as session:
                return work(session, attempt < tries - 1)
        except SendInFlight:
            time.sleep(pause)
    raise AssertionError("unreachable: the last attempt does not wait")


@dataclass(frozen=True)
class Outcome:
    """What one consent change did, for the caller to report and flush."""

    event_id: int
    study_id: str
    scope: Scope
    change: Change
    confirmation_id: int | None = None  # outbox row of the participant's confirmation
    alert_notice_id: int | None = None  # outbox row of the coordinators' ADMIN alert notice
    cancelled_messages: int = 0
    cancelled_visits: int = 0


@dataclass(frozen=True)
class Notify:
    """Where the coordinators' alerts go, and in which language."""

    chat_id: int | None
    language: str = "zh"


@dataclass(frozen=True)
class Who:
    actor: str  # participant, coordinator or system
    actor_id: str
    channel: str
    note: str | None


def consent_history(session: Session, participant_id: int) -> Sequence[ConsentEvent]:
    query = select(ConsentEvent).where(ConsentEvent.participant_id == participant_id)
    return session.exec(query.order_by(col(ConsentEvent.id))).all()


def consent_state(session: Session, participant: Participant) -> ConsentState:
    assert participant.id is not None
    history = consent_history(session, participant.id)
    return derive(history, biospecimen_now=participant.biospecimen)


def _flags(participant: Participant) -> dict[str, Any]:
    return {"status": participant.status, "chat_contact": participant.chat_contact,
            "biospecimen": participant.biospecimen}  # fmt: skip


def _change(
    session: Session, participant_id: int, scope: Scope, change: Change,
    samples: Samples | None, now: dt.datetime, who: Who,
) -> tuple[Participant, ConsentEvent, dict[str, Any]]:  # fmt: skip
    """Lock the participant first, append the event and derive the new flags from history."""
    participant = lock_participant(session, participant_id)
    if participant is None or participant.id is None:
        raise ConsentError("no such participant")
    if participant.status not in (ParticipantStatus.ACTIVE, ParticipantStatus.WITHDRAWN):
        raise ConsentError(f"participant status is {participant.status}")
    state = apply(consent_state(session, participant), scope, change, samples)
    before = _flags(participant)
    event = ConsentEvent(participant_id=participant.id, scope=scope.value, change=change.value,
                         samples=samples.value if samples else None, at=now, actor=who.actor,
                         actor_id=who.actor_id, channel=who.channel, note=who.note)  # fmt: skip
    session.add(event)
    status = ParticipantStatus.ACTIVE if state.in_study else ParticipantStatus.WITHDRAWN
    participant.status = status
    participant.chat_contact = state.chat_allowed
    participant.biospecimen = state.biospecimen
    session.add(participant)
    session.flush()
    return participant, event, before


def _cancel_messages(session: Session, participant_id: int) -> tuple[int, list[int]]:
    """Cancel every unsent message except the replies allowed after a withdrawal.

    Returns the count, and the ids of rows whose earlier attempt ended in a timeout or error:
    Telegram may have received those before this commit, the one exception we can't rule out.
    """
    allowed = [col(OutboxMessage.purpose).startswith(p) for p in AFTER_WITHDRAWAL_PURPOSES]
    unsent = (
        col(OutboxMessage.participant_id) == participant_id,
        col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
        *(~clause for clause in allowed),
    )
    rows = session.exec(select(OutboxMessage.id, OutboxMessage.last_error).where(*unsent)).all()
    session.execute(update(OutboxMessage).where(*unsent).values(status=OutboxStatus.CANCELLED))
    return len(rows), [i for i, error in rows if error is not None and i is not None]


def withdraw(
    session: Session, *, participant_id: int, scope: Scope, samples: Samples | None,
    actor: str, actor_id: str, channel: str, now: dt.datetime, render: Render,
    team_contact: str, notify: Notify, reason: str | None = None,
    wait_for_sends: bool = True,
) -> Outcome:  # fmt: skip
    """Withdraw one scope in the caller's transaction, with everything that follows from it.

    Chat messages stop for contact and study; future visits stop for study only (after leaving
    chat, the study still follows up by phone). The confirmation is the one message that may
    still go out, and the coordinators are alerted. While a message to the participant is being
    handed to Telegram this raises SendInFlight (see `with_sends_settled`), unless
    `wait_for_sends` is False: then the message is recorded as possibly delivered before commit.
    """
    participant, event, before = _change(
        session, participant_id, scope, Change.WITHDRAW, samples, now,
        Who(actor, actor_id, channel, reason),
    )  # fmt: skip
    assert participant.id is not None and event.id is not None
    cancelled, maybe_delivered, handed = 0, list[int](), list[int]()
    if scope in (Scope.CONTACT, Scope.STUDY):
        handed = outbox.in_flight(session, participant_id=participant.id, now=now)
        if handed and wait_for_sends:
            raise SendInFlight(handed)
        cancelled, maybe_delivered = _cancel_messages(session, participant.id)
        maybe_delivered = sorted({*maybe_delivered, *handed})
    cancelled_visits = (
        visits.cancel_remaining(session, participant.id) if scope is Scope.STUDY else 0
    )
    study_id = participant.study_id
    audit.record(
        session, at=now, actor=actor_id, action="consent.withdrawn", entity="participant",
        entity_id=study_id, before=before,
        after={**_flags(participant), "scope": scope.value, "samples": event.samples,
               "channel": channel, "consent_event": event.id, "cancelled_messages": cancelled,
               "possibly_delivered_before_commit": maybe_delivered,
               "cancelled_visits": cancelled_visits},
    )  # fmt: skip
    confirmation = None
    if participant.telegram_chat_id is not None:
        confirmation = outbox.enqueue(
            session, purpose=f"withdrawal-confirmation:{study_id}:{event.id}",
            chat_id=participant.telegram_chat_id, participant_id=participant.id, now=now,
            text=render(f"withdrawal_done_{scope.value}", participant.language,
                        samples=event.samples, team_contact=team_contact),
        )  # fmt: skip
    alert = _alert_coordinators(session, participant, event, now, render, notify)
    log.info("participant %s withdrew from %s via %s", study_id, scope.value, channel)
    return Outcome(event.id, study_id, scope, Change.WITHDRAW, confirmation, alert, cancelled,
                   cancelled_visits)  # fmt: skip


def _alert_coordinators(
    session: Session, participant: Participant, event: ConsentEvent, now: dt.datetime,
    render: Render, notify: Notify,
) -> int | None:  # fmt: skip
    """The ADMIN alert for the coordinators; return the outbox id of its notice, if queued."""
    notice = render(
        "alert_withdrawal", notify.language, study_id=participant.study_id, scope=event.scope,
        samples=event.samples, channel=event.channel,
    )  # fmt: skip
    alert = alerts.raise_alert(
        session, tier=AlertTier.ADMIN, kind="withdrawal", now=now,
        participant_id=participant.id, detail=f"withdrew from {event.scope} ({event.channel})",
        notify_chat_id=notify.chat_id, notice=notice, language=notify.language,
    )  # fmt: skip
    query = select(OutboxMessage.id).where(OutboxMessage.purpose == f"alert:{alert.id}")
    return session.exec(query).first()


def restore(
    session: Session, *, participant_id: int, scope: Scope, actor_id: str, channel: str,
    note: str, now: dt.datetime,
) -> Outcome:  # fmt: skip
    """Record a re-consent taken by a coordinator; the note saying how and why is mandatory.

    Visits cancelled by an earlier withdrawal stay cancelled; the coordinator re-plans them.
    """
    if not note.strip():
        raise ConsentError("a re-consent needs a note")
    participant, event, before = _change(
        session, participant_id, scope, Change.RESTORE, None, now,
        Who("coordinator", actor_id, channel, note.strip()),
    )  # fmt: skip
    assert event.id is not None
    audit.record(
        session, at=now, actor=actor_id, action="consent.restored", entity="participant",
        entity_id=participant.study_id, before=before,
        after={**_flags(participant), "scope": scope.value, "channel": channel,
               "consent_event": event.id},
    )  # fmt: skip
    log.info("participant %s re-consented to %s", participant.study_id, scope.value)
    return Outcome(event.id, participant.study_id, scope, Change.RESTORE)
