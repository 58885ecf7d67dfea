"""The dispatch pass's alert steps: due notices and RED re-notices, and the daily digest.

Both are guarded by rows (the alert's notice count, the digest's unique outbox purpose), so a
second pass or a second process queues nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from followup.settings import Settings
from messages.render import render
from models import escalation, outbox
from models.coordinator_views import alert_rows, visit_rows
from models.tables import OutboxMessage

log = logging.getLogger(__name__)
BATCH = 100


def notice_step(session: Session, *, settings: Settings, now: dt.datetime) -> bool:
    """Queue the alert notices due as of `now`; True if there may be more."""
    queued = escalation.queue_notices(
        session, now=now, chat_id=settings.coordinator_chat_id,
        language=settings.coordinator_language,
        interval=dt.timedelta(minutes=settings.alert_renotify_minutes), limit=BATCH,
    )  # fmt: skip
    return len(queued) == BATCH


def digest_purpose(day: dt.date) -> str:
    return f"digest:{day.isoformat()}"


def digest_step(session: Session, *, settings: Settings, now: dt.datetime) -> bool:
    """Once a day, from `digest_hour` local time: open alerts and due, overdue, missed visits."""
    chat_id = settings.coordinator_chat_id
    local = now.astimezone(ZoneInfo(settings.timezone))
    if chat_id is None or local.hour < settings.digest_hour:
        return False
    purpose = digest_purpose(local.date())
    if session.exec(select(OutboxMessage.id).where(OutboxMessage.purpose == purpose)).first():
        return False
    alerts = [r.__dict__ for r in alert_rows(session, only_open=True, last=40)]
    visits = [r.__dict__ | {"due": r.due_date.isoformat()}
              for r in visit_rows(session, today=local.date(), first=60)]  # fmt: skip
    text = render("alert_digest", settings.coordinator_language, day=local.date().isoformat(),
                  alerts=alerts, visits=visits)  # fmt: skip
    outbox.enqueue(session, purpose=purpose, chat_id=chat_id, text=text, now=now)
    log.info("digest queued: %d open alerts, %d visits", len(alerts), len(visits))
    return False
