"""Rows for the alert, consent and visit exports: study ids, never Telegram ids or names."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, col, select

from models.consent import ConsentEvent
from models.tables import Alert, Participant, Visit

ALERT_COLUMNS = ("alert_id", "study_id", "visit", "tier", "kind", "status", "rules_version",
                 "reasons", "created_at", "acknowledged_at", "acknowledged_by", "resolved_at",
                 "resolved_by", "resolution_note")  # fmt: skip
CONSENT_COLUMNS = ("study_id", "at", "scope", "change", "actor", "actor_id", "channel",
                   "samples", "note")  # fmt: skip
VISIT_COLUMNS = ("study_id", "visit", "due_date", "window_closes_on", "status", "completed_at",
                 "completion_mode")  # fmt: skip


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else value


def alert_export(session: Session, *, since: dt.datetime | None = None) -> list[tuple[Any, ...]]:
    query = (
        select(Alert, Participant.study_id, Visit.number)
        .join(Participant, col(Participant.id) == col(Alert.participant_id), isouter=True)
        .join(Visit, col(Visit.id) == col(Alert.visit_id), isouter=True)
        .order_by(col(Alert.id))
    )
    if since is not None:
        query = query.where(col(Alert.created_at) >= since)
    return [
        tuple(_iso(v) for v in (a.id, study or "", number, a.tier, a.kind, a.status,
              a.rules_version, a.reasons, a.created_at, a.acknowledged_at, a.acknowledged_by,
              a.resolved_at, a.resolved_by, a.resolution_note))
        for a, study, number in session.exec(query).all()
    ]  # fmt: skip


def consent_export(session: Session, *, since: dt.datetime | None = None) -> list[tuple[Any, ...]]:
    query = (
        select(ConsentEvent, Participant.study_id)
        .join(Participant, col(Participant.id) == col(ConsentEvent.participant_id))
        .order_by(col(ConsentEvent.at), col(ConsentEvent.id))
    )
    if since is not None:
        query = query.where(col(ConsentEvent.at) >= since)
    return [
        tuple(_iso(v) for v in (study, e.at, e.scope, e.change, e.actor, e.actor_id, e.channel,
                                e.samples, e.note))
        for e, study in session.exec(query).all()
    ]  # fmt: skip


def visit_export(session: Session, *, since: dt.datetime | None = None) -> list[tuple[Any, ...]]:
    query = (
        select(Visit, Participant.study_id)
        .join(Participant, col(Participant.id) == col(Visit.participant_id))
        .order_by(col(Participant.study_id), col(Visit.number))
    )
    if since is not None:
        query = query.where(col(Visit.due_date) >= since.date())
    return [
        tuple(_iso(v) for v in (study, v.number, v.due_date, v.window_closes_on, v.status,
                                v.completed_at, v.completion_mode))
        for v, study in session.exec(query).all()
    ]  # fmt: skip
