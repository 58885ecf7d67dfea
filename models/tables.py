"""The skeleton's tables: participants, invites, link attempts, the audit log and the outbox."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


def _utc(nullable: bool = True, index: bool = False) -> Column[dt.datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class ParticipantStatus(StrEnum):
    """Where a participant stands in the study (consent scopes are tracked beside it)."""

    ACTIVE = "active"
    DEATH_REPORTED = "death_reported"  # a proxy reported a death; awaiting a coordinator
    DECEASED = "deceased"  # confirmed by a coordinator: no contact ever again
    WITHDRAWN = "withdrawn"  # left the whole study: no contact of any kind


class Participant(SQLModel, table=True):
    """One enrolled person, known by a pseudonymous study id; never a name or phone number."""

    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(max_length=32, unique=True, index=True)
    language: str = Field(max_length=2)
    timezone: str = Field(max_length=64)
    enrolled_on: dt.date
    biospecimen: bool = False
    status: str = Field(default=ParticipantStatus.ACTIVE, max_length=24)
    chat_contact: bool = True  # False once they withdraw from chat contact
    unreachable: bool = False  # Telegram refused a send (403); cleared when they write again
    telegram_user_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, unique=True, nullable=True)
    )
    telegram_chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # The schedule settings the visits were last planned with (study.visits.ScheduleRules);
    # NULL for a new participant. Indexed so the dispatch pass finds who needs a plan cheaply.
    plan_key: str | None = Field(default=None, max_length=128, index=True)
    linked_at: dt.datetime | None = Field(default=None, sa_column=_utc())
    created_at: dt.datetime = Field(sa_column=_utc(nullable=False))


class Invite(SQLModel, table=True):
    """A single-use link token; only its SHA-256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(sa_column=_utc(nullable=False))
    expires_at: dt.datetime = Field(sa_column=_utc(nullable=False))
    used_at: dt.datetime | None = Field(default=None, sa_column=_utc())
    revoked_at: dt.datetime | None = Field(default=None, sa_column=_utc())


class LinkAttempt(SQLModel, table=True):
    """A failed /start from a Telegram user, kept under a hash of the user id for throttling."""

    __table_args__ = (Index("ix_linkattempt_user_at", "user_key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_key: str = Field(max_length=64)
    at: dt.datetime = Field(sa_column=_utc(nullable=False))


class AuditEvent(SQLModel, table=True):
    """Append-only record of a state change, chained to the previous row by hash."""

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(sa_column=_utc(nullable=False))
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64, index=True)
    before: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    after: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"
    FAILED = "failed"


class OutboxMessage(SQLModel, table=True):
    """A message to send, written in the same transaction as the change that caused it.

    `purpose` is unique, e.g. "prompt:P001:2": one purpose can create one message at most.
    """

    __table_args__ = (
        UniqueConstraint("purpose", name="uq_outbox_purpose"),
        Index("ix_outbox_status_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    purpose: str = Field(max_length=128)
    text: str = Field(sa_column=Column(Text, nullable=False))
    reply_markup: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    attempts: int = 0
    created_at: dt.datetime = Field(sa_column=_utc(nullable=False))
    next_attempt_at: dt.datetime = Field(sa_column=_utc(nullable=False))
    sent_at: dt.datetime | None = Field(default=None, sa_column=_utc())
    # Set when this attempt is handed to Telegram, cleared by the next claim: a withdrawal waits
    # for such a send to finish before it commits (models/consent.py).
    handed_at: dt.datetime | None = Field(default=None, sa_column=_utc())
    telegram_message_id: int | None = None
    last_error: str | None = Field(default=None, max_length=200)


class VisitStatus(StrEnum):
    PLANNED = "planned"  # not yet due
    OPEN = "open"  # prompt sent (or due); the window is open
    COMPLETED = "completed"  # submitted in chat, or recorded by phone or in clinic
    MISSED = "missed"  # the window closed unanswered; handed to a coordinator
    CANCELLED = "cancelled"  # withdrawal, confirmed death, or re-planned away


class Visit(SQLModel, table=True):
    """One quarterly follow-up contact; `number` 1 is due 3 months after enrolment."""

    __table_args__ = (
        UniqueConstraint("participant_id", "number", name="uq_visit_number"),
        # The dispatch pass's query: active visits whose next stage is due (a range per status).
        Index("ix_visit_status_next_action_at", "status", "next_action_at"),
        # The digest's and /due's query: planned visits due soon, missed ones closed lately.
        Index("ix_visit_status_due_date", "status", "due_date"),
        Index("ix_visit_status_window_closes_on", "status", "window_closes_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    number: int
    due_date: dt.date
    window_closes_on: dt.date
    status: str = Field(default=VisitStatus.PLANNED, max_length=16, index=True)
    completed_at: dt.datetime | None = Field(default=None, sa_column=_utc())
    completion_mode: str | None = Field(default=None, max_length=8)  # chat, phone or clinic
    created_at: dt.datetime = Field(sa_column=_utc(nullable=False))
    # The dispatch pass's cursor: the next stage (study.visits: prompt, reminder1 …, close,
    # done) and when it falls due; NULL once the visit is completed, missed or cancelled.
    stage: str = Field(default="prompt", max_length=16)
    next_action_at: dt.datetime | None = Field(default=None, sa_column=_utc())
    note: str | None = Field(default=None, max_length=500)  # a coordinator's completion note


class AlertTier(StrEnum):
    RED = "RED"
    AMBER = "AMBER"
    ADMIN = "ADMIN"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(SQLModel, table=True):
    """Something a coordinator must act on; it stays open until someone does.

    `kind` names the trigger (visit_missed, unreachable, …); `detail` is a short, non-clinical
    note for the coordinator's view. Notifications go through the outbox as `alert:<id>`.
    """

    __table_args__ = (Index("ix_alert_status_tier", "status", "tier"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    visit_id: int | None = Field(default=None, foreign_key="visit.id", index=True)
    tier: str = Field(max_length=8)
    kind: str = Field(max_length=32)
    status: str = Field(default=AlertStatus.OPEN, max_length=16)
    detail: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = Field(sa_column=_utc(nullable=False))
    notified_at: dt.datetime | None = Field(default=None, sa_column=_utc())
    acknowledged_at: dt.datetime | None = Field(default=None, sa_column=_utc())
    acknowledged_by: str | None = Field(default=None, max_length=64)
    resolved_at: dt.datetime | None = Field(default=None, sa_column=_utc())
    # Escalation (issue 5): the rules version that raised it, one alert per key (e.g.
    # "checkin:12:score:cough_severity" or "message:<update id>"), the reasons as JSON, and the
    # notices: how many went out and when the next is due (first notice, or a RED re-notice).
    rules_version: str | None = Field(default=None, max_length=32)
    key: str | None = Field(default=None, max_length=128, unique=True, index=True)
    reasons: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    notices: int = 0
    next_notice_at: dt.datetime | None = Field(default=None, sa_column=_utc(index=True))
    resolved_by: str | None = Field(default=None, max_length=64)
    resolution_note: str | None = Field(default=None, max_length=500)
