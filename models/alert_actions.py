"""A coordinator's handling of an alert: acknowledge, resolve with a note, show the answers.

Every change is guarded by the alert's current state and audited with who and when; pressing a
button twice, or two coordinators at once, changes the alert once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col, select

from messages.instruments import texts
from models import audit
from models.checkins import checkin_for_visit, current_answers
from models.tables import Alert, AlertStatus, OutboxMessage

NOTE_LIMIT = 500


@dataclass(frozen=True)
class Handled:
    """The outcome of a press: `changed` False when the alert was already past that state."""

    alert: Alert | None
    changed: bool


def _audit(session: Session, alert: Alert, action: str, by: str, now: dt.datetime,
           before: str, note: str | None = None) -> None:  # fmt: skip
    after: dict[str, object] = {"status": alert.status}
    if note is not None:
        after["note"] = note
    audit.record(session, at=now, actor=by, action=action, entity="alert",
                 entity_id=str(alert.id), before={"status": before}, after=after)  # fmt: skip


def _move(session: Session, alert_id: int, from_states: Sequence[str], **values: object) -> bool:
    moved = session.execute(
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.status).in_(list(from_states)))
        .values(**values)
    )
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def _fresh(session: Session, alert_id: int) -> Alert | None:
    query = select(Alert).where(Alert.id == alert_id).execution_options(populate_existing=True)
    return session.exec(query).first()


def acknowledge(session: Session, *, alert_id: int, by: str, now: dt.datetime) -> Handled:
    """Open to acknowledged; stops a RED alert's re-notices."""
    moved = _move(session, alert_id, [AlertStatus.OPEN], status=AlertStatus.ACKNOWLEDGED,
                  acknowledged_at=now, acknowledged_by=by[:64], next_notice_at=None)  # fmt: skip
    alert = _fresh(session, alert_id)
    if moved and alert is not None:
        _audit(session, alert, "alert.acknowledged", by, now, AlertStatus.OPEN)
    return Handled(alert, moved)


def resolve(session: Session, *, alert_id: int, by: str, note: str, now: dt.datetime) -> Handled:
    """Open or acknowledged to resolved, with the coordinator's short note."""
    before = _fresh(session, alert_id)
    if before is None:
        return Handled(None, False)
    previous = before.status
    values: dict[str, object] = {
        "status": AlertStatus.RESOLVED, "resolved_at": now, "resolved_by": by[:64],
        "resolution_note": note.strip()[:NOTE_LIMIT], "next_notice_at": None,
    }  # fmt: skip
    if previous == AlertStatus.OPEN:  # resolving also acknowledges
        values |= {"acknowledged_at": now, "acknowledged_by": by[:64]}
    moved = _move(session, alert_id, [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED], **values)
    alert = _fresh(session, alert_id)
    if moved and alert is not None:
        _audit(session, alert, "alert.resolved", by, now, previous, note=alert.resolution_note)
    return Handled(alert, moved)


def alert_by_id(session: Session, alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)


def list_alerts(session: Session, *, only_open: bool = False) -> Sequence[Alert]:
    """Alerts newest first; `only_open` keeps those not yet resolved (open or acknowledged)."""
    query = select(Alert)
    if only_open:
        query = query.where(col(Alert.status) != AlertStatus.RESOLVED)
    return session.exec(query.order_by(col(Alert.id).desc())).all()


def answer_lines(session: Session, alert: Alert, language: str) -> list[dict[str, str]]:
    """The check-in answers behind an alert, as (label, answer) in `language`."""
    if alert.visit_id is None:
        return []
    checkin = checkin_for_visit(session, alert.visit_id)
    if checkin is None or checkin.id is None:
        return []
    words = texts(checkin.version, language, checkin.instrument)
    answers = current_answers(session, checkin.id)
    return [
        {"label": words.short(item), "answer": _clip(words.answer(item, answers[item.id]))}
        for item in words.questionnaire.items
        if item.id in answers
    ]


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alert_of_note_request(session: Session, *, chat_id: int, message_id: int) -> int | None:
    """The alert whose "reply with a note" message this is, from the outbox's own records."""
    query = select(OutboxMessage.purpose).where(
        OutboxMessage.chat_id == chat_id,
        OutboxMessage.telegram_message_id == message_id,
        col(OutboxMessage.purpose).startswith("alert:"),
        col(OutboxMessage.purpose).contains(":note:"),
    )
    purpose = session.exec(query).first()
    if purpose is None:
        return None
    number = purpose.split(":")[1]
    return int(number) if number.isdigit() else None


def notice_messages(session: Session, alert_id: int) -> list[tuple[int, int]]:
    """(chat id, Telegram message id) of every notice of this alert that was delivered."""
    query = select(OutboxMessage.chat_id, OutboxMessage.telegram_message_id).where(
        col(OutboxMessage.purpose).in_([f"alert:{alert_id}"])
        | col(OutboxMessage.purpose).startswith(f"alert:{alert_id}:renotify:"),
        col(OutboxMessage.telegram_message_id).is_not(None),
    )
    return [(chat, message) for chat, message in session.exec(query).all() if message]
