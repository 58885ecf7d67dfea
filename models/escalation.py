"""Escalation: raise alerts from stored answers and messages, and queue their coordinator notices.

Alerts are raised in the same transaction that stores the answer (or accepts the message), so
an alert exists whenever the answer does. Notices are queued separately, by `queue_notices`, from
the alert rows (`next_notice_at`): right after the update that raised them, and in every dispatch
pass. A missing or unreachable coordinator chat therefore never loses an alert: it stays open
and due for a notice until one is sent, and an unacknowledged RED alert is noticed again every
`interval` until someone acknowledges it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, update
from sqlmodel import Session, col, select

from messages import alert_rules
from messages.alert_wording import alert_markup, notice_text
from messages.phrases import emergency_phrases
from messages.render import render
from models import audit, outbox
from models.checkin_tables import CheckIn, CheckInStatus
from models.checkins import current_answers
from models.tables import Alert, AlertStatus, AlertTier, Participant, Visit
from study.alert_rules import RED, Hit, Rules, evaluate, evaluate_message

log = logging.getLogger(__name__)
_raised = 0  # alerts raised by this process: a hint to queue notices now (the pass is the net)
NO_EMERGENCY_TEXT = frozenset({"death_reported"})  # the condolence text is sent instead


def _reasons(hits: Sequence[Hit], instrument_version: str | None) -> str:
    return json.dumps(
        [{"rule": h.rule, "item": h.item, "value": h.value, "previous": h.previous,
          "version": instrument_version} for h in hits],
        ensure_ascii=False,
    )  # fmt: skip


def raise_escalation(
    session: Session, *, participant: Participant, tier: str, kind: str, hits: Sequence[Hit],
    key: str, rules: Rules, now: dt.datetime, visit_id: int | None = None,
    instrument_version: str | None = None,
) -> Alert | None:  # fmt: skip
    """Store one open alert unless one with `key` exists; its notice is due at once."""
    if session.exec(select(Alert.id).where(Alert.key == key)).first() is not None:
        return None
    alert = Alert(
        participant_id=participant.id, visit_id=visit_id, tier=tier, kind=kind,
        status=AlertStatus.OPEN, created_at=now, rules_version=rules.name, key=key,
        reasons=_reasons(hits, instrument_version), next_notice_at=now,
        detail=", ".join(h.key for h in hits)[:200],
    )  # fmt: skip
    session.add(alert)
    session.flush()
    audit.record(
        session, at=now, actor="system", action="alert.raised", entity="alert",
        entity_id=str(alert.id),
        after={"study_id": participant.study_id, "tier": tier, "kind": kind,
               "rules": rules.name, "reasons": [h.key for h in hits]},
    )  # fmt: skip
    log.info("alert %s raised: %s %s for %s", alert.id, tier, kind, participant.study_id)
    session.info.setdefault(_RAISED, []).append(alert.id)
    event.listen(session, "after_commit", _count_raised, once=True)
    return alert


_RAISED, _NOTICED = "escalation.raised", "escalation.noticed"


def raised_in(session: Session) -> list[int]:
    """The ids of the alerts this transaction raised so far."""
    return list(session.info.get(_RAISED, []))


def noticed_in(session: Session) -> None:
    """Say this transaction also queued the notices of the alerts it raised (no hint needed)."""
    session.info[_NOTICED] = True


def _count_raised(session: Session) -> None:
    global _raised
    if not session.info.get(_NOTICED):
        _raised += 1


def raised_count() -> int:
    """How many transactions of this process committed new alerts: a cheap hint.

    It moves only after the commit, so whoever reads a new value and then queries finds them.
    """
    return _raised


def previous_answers(session: Session, checkin: CheckIn) -> dict[str, str]:
    """The same participant's answers from their latest earlier completed check-in."""
    query = (
        select(CheckIn.id)
        .where(
            CheckIn.participant_id == checkin.participant_id,
            CheckIn.status == CheckInStatus.COMPLETED,
            col(CheckIn.id) != checkin.id,
            col(CheckIn.started_at) <= checkin.started_at,
        )
        .order_by(col(CheckIn.started_at).desc(), col(CheckIn.id).desc())
    )
    earlier = session.exec(query).first()
    return current_answers(session, earlier) if earlier is not None else {}


def _emergency_text(session: Session, participant: Participant, purpose: str,
                    now: dt.datetime) -> int | None:  # fmt: skip
    if participant.telegram_chat_id is None:
        return None
    return outbox.enqueue(
        session, purpose=purpose, chat_id=participant.telegram_chat_id,
        participant_id=participant.id, text=render("emergency", participant.language), now=now,
    )  # fmt: skip


def on_answer(
    session: Session, *, participant: Participant, checkin: CheckIn, answers: dict[str, str],
    now: dt.datetime,
) -> list[int]:  # fmt: skip
    """After an answer is stored: raise any new RED alert and send the emergency text at once.

    Returns the outbox ids to deliver now. AMBER waits for the submission (`on_submit`), so a
    participant can still correct a mistaken answer from the summary.
    """
    rules = alert_rules.current()
    version = f"{checkin.instrument}-v{checkin.version}"
    ids: list[int] = []
    # Only RED counts here, so the previous check-in matters only if worsening is RED: a query
    # or two fewer on every answer under the rules as shipped (worsening is AMBER).
    previous = previous_answers(session, checkin) if rules.worsening_tier == RED else None
    for hit in evaluate(rules, answers, previous):
        if hit.tier != RED:
            continue
        alert = raise_escalation(
            session, participant=participant, tier=AlertTier.RED, kind=hit.rule, hits=[hit],
            key=f"checkin:{checkin.id}:{hit.key}", rules=rules, now=now,
            visit_id=checkin.visit_id, instrument_version=version,
        )  # fmt: skip
        if alert is not None and hit.rule not in NO_EMERGENCY_TEXT:
            sent = _emergency_text(session, participant, f"checkin:{checkin.id}:red:{hit.key}",
                                   now)  # fmt: skip
            ids += [sent] if sent is not None else []
    return ids


def on_submit(
    session: Session, *, participant: Participant, checkin: CheckIn, answers: dict[str, str],
    now: dt.datetime,
) -> bool:  # fmt: skip
    """At submission: one AMBER alert for every AMBER reason; True if any alert was raised."""
    rules = alert_rules.current()
    version = f"{checkin.instrument}-v{checkin.version}"
    hits = evaluate(rules, answers, previous_answers(session, checkin))
    amber = [h for h in hits if h.tier != RED]
    if amber:
        raise_escalation(
            session, participant=participant, tier=AlertTier.AMBER, kind="checkin_amber",
            hits=amber, key=f"checkin:{checkin.id}:amber", rules=rules, now=now,
            visit_id=checkin.visit_id, instrument_version=version,
        )  # fmt: skip
    return bool(hits)


def on_message(
    session: Session, *, participant: Participant, text: str, update_id: int, now: dt.datetime,
    send_text: bool = True,
) -> list[int] | None:  # fmt: skip
    """An emergency phrase in any message: a RED alert and the emergency text, once per update.

    None when the message holds no emergency phrase; otherwise the outbox ids to deliver now.
    """
    rules = alert_rules.current()
    hit = evaluate_message(rules, text, emergency_phrases())
    if hit is None:
        return None
    alert = raise_escalation(
        session, participant=participant, tier=hit.tier, kind=hit.rule, hits=[hit],
        key=f"message:{update_id}", rules=rules, now=now,
    )  # fmt: skip
    if alert is None or not send_text:
        return []
    sent = _emergency_text(session, participant, f"emergency:{participant.study_id}:{update_id}",
                           now)  # fmt: skip
    return [sent] if sent is not None else []


# ---- notices -------------------------------------------------------------------------------


def notice_context(session: Session, alert: Alert) -> dict[str, Any]:
    """What a notice shows: study id, tier, reasons, visit and state (no Telegram ids)."""
    participant = session.get(Participant, alert.participant_id) if alert.participant_id else None
    visit = session.get(Visit, alert.visit_id) if alert.visit_id else None
    return {
        "alert": alert,
        "study_id": participant.study_id if participant else "-",
        "visit": visit.number if visit else None,
        "reasons": json.loads(alert.reasons) if alert.reasons else [],
        "detail": alert.detail,  # what an ADMIN alert (no scored answers) is about
    }


def queue_notices(
    session: Session, *, now: dt.datetime, chat_id: int | None, language: str,
    interval: dt.timedelta, limit: int = 100,
) -> list[int]:  # fmt: skip
    """Queue every notice due as of `now`: first notices, and RED re-notices while unacknowledged.

    Each alert row is advanced under a guard on its notice count, so two passes at once queue
    one notice; the outbox's unique purpose backs that up.
    """
    due = session.exec(
        select(Alert)
        .where(col(Alert.next_notice_at) <= now)
        .order_by(col(Alert.next_notice_at), col(Alert.id))
        .limit(limit)
    ).all()
    if due and chat_id is None:
        log.warning("%d alert notice(s) due; FOLLOWUP_COORDINATOR_CHAT_ID is not set", len(due))
        return []
    ids: list[int] = []
    for alert in due:
        assert alert.id is not None and chat_id is not None
        first = alert.notices == 0
        repeat = alert.tier == AlertTier.RED and alert.status == AlertStatus.OPEN
        following = now + interval if repeat else None
        advanced = session.execute(
            update(Alert)
            .where(col(Alert.id) == alert.id, col(Alert.notices) == alert.notices)
            .values(notices=alert.notices + 1 if first or repeat else alert.notices,
                    next_notice_at=following, notified_at=alert.notified_at or now)
        )  # fmt: skip
        if advanced.rowcount != 1 or not (first or repeat):  # type: ignore[attr-defined]
            continue
        purpose = f"alert:{alert.id}" if first else f"alert:{alert.id}:renotify:{alert.notices}"
        context = notice_context(session, alert)
        text = notice_text(language, repeat=not first, **context)
        queued = outbox.enqueue(session, purpose=purpose, chat_id=chat_id, text=text, now=now,
                                reply_markup=alert_markup(alert, language))  # fmt: skip
        ids += [queued] if queued is not None else []
    return ids
