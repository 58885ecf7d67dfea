"""Reachability: Telegram refused a send (403), or the participant wrote to the bot again."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlmodel import Session

from models import alerts, audit, visits
from models.tables import AlertTier, Participant

log = logging.getLogger(__name__)
UNREACHABLE = "unreachable"


def mark_unreachable(
    session: Session, *, participant_id: int, now: dt.datetime, notify_chat_id: int | None,
    notice: Callable[[str], str], language: str = "zh",
) -> bool:  # fmt: skip
    """Stop writing to a participant Telegram refused, and raise one ADMIN alert for a call.

    Returns True when this call made the change; a second refusal changes nothing and raises
    no second alert while the first is open.
    """
    participant = session.get(Participant, participant_id, with_for_update=True)
    if participant is None or participant.unreachable:
        return False
    participant.unreachable = True
    session.add(participant)
    audit.record(
        session, at=now, actor="system:sender", action="participant.unreachable",
        entity="participant", entity_id=participant.study_id,
        before={"unreachable": False}, after={"unreachable": True},
    )  # fmt: skip
    if not alerts.open_alerts(session, kind=UNREACHABLE, participant_id=participant_id):
        alerts.raise_alert(
            session, tier=AlertTier.ADMIN, kind=UNREACHABLE, now=now,
            participant_id=participant_id, detail="Telegram refused a message (403)",
            notify_chat_id=notify_chat_id, notice=notice(participant.study_id),
            language=language,
        )  # fmt: skip
    log.warning("participant %s marked unreachable", participant.study_id)
    return True


def mark_reachable(session: Session, *, participant_id: int, now: dt.datetime) -> bool:
    """The participant wrote to the bot again: resume sending and resolve the open alert."""
    participant = session.get(Participant, participant_id, with_for_update=True)
    if participant is None or not participant.unreachable:
        return False
    participant.unreachable = False
    session.add(participant)
    visits.wake(session, participant_id=participant_id, now=now)
    resolved = alerts.resolve_alerts(session, participant_id=participant_id, kind=UNREACHABLE,
                                     now=now)  # fmt: skip
    audit.record(
        session, at=now, actor=f"participant:{participant.study_id}",
        action="participant.reachable", entity="participant", entity_id=participant.study_id,
        before={"unreachable": True}, after={"unreachable": False, "resolved_alerts": resolved},
    )  # fmt: skip
    log.info("participant %s reachable again", participant.study_id)
    return True
