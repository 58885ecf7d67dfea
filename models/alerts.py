"""Query functions for alerts: raise one (with its coordinator notice), find and resolve them."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from messages.alert_wording import alert_markup, open_alert_markup
from models import outbox
from models.tables import Alert, AlertStatus

log = logging.getLogger(__name__)


def raise_alert(
    session: Session,
    *,
    tier: str,
    kind: str,
    now: dt.datetime,
    participant_id: int | None = None,
    visit_id: int | None = None,
    detail: str | None = None,
    notify_chat_id: int | None = None,
    notice: str | None = None,
    not_before: dt.datetime | None = None,
    language: str = "zh",
) -> Alert:
    """Store an open alert and, in the same transaction, queue its notice to the coordinators.

    `not_before` can hold a non-urgent notice back, e.g. until the coordinators' morning.
    The notice is not addressed to a participant (`participant_id` is left empty on the outbox
    row), so a participant's contact state never holds back a coordinator's alert.
    """
    alert = Alert(
        participant_id=participant_id,
        visit_id=visit_id,
        tier=tier,
        kind=kind,
        detail=detail,
        status=AlertStatus.OPEN,
        created_at=now,
    )
    session.add(alert)
    session.flush()
    if notify_chat_id is not None and notice:
        # The same Acknowledge / Resolve / Show answers buttons as every other alert; the
        # notice counts as the first one, so the escalation pass does not send it again.
        alert.notices, alert.notified_at = 1, now
        outbox.enqueue(
            session, purpose=f"alert:{alert.id}", chat_id=notify_chat_id, text=notice, now=now,
            not_before=not_before, reply_markup=alert_markup(alert, language),
        )  # fmt: skip
    else:
        log.warning("alert %s (%s) stored; no coordinator chat is configured", alert.id, kind)
    return alert


@dataclass(frozen=True)
class NewAlert:
    """One of many alerts of the same tier and kind raised together (`raise_alerts`)."""

    participant_id: int | None
    visit_id: int | None
    detail: str | None
    notice: str


_ALERTS = Alert.__table__  # type: ignore[attr-defined]
_RAISE = _ALERTS.insert().returning(
    *(_ALERTS.c[name] for name in ("id", "participant_id", "visit_id", "detail", "notices"))
)


def raise_alerts(
    session: Session, *, tier: str, kind: str, now: dt.datetime, alerts: Sequence[NewAlert],
    notify_chat_id: int | None, not_before: dt.datetime | None = None, language: str = "zh",
) -> list[int]:  # fmt: skip
    """`raise_alert` for many alerts at once: one INSERT for the alerts, one for the notices.

    The same rows as `raise_alert` would write, one by one; returns the new alerts' ids.
    """
    if not alerts:
        return []
    notify = notify_chat_id is not None
    rows = [
        {"participant_id": a.participant_id, "visit_id": a.visit_id, "tier": tier, "kind": kind,
         "status": AlertStatus.OPEN.value, "detail": a.detail, "created_at": now,
         "notices": 1 if notify and a.notice else 0,
         "notified_at": now if notify and a.notice else None}
        for a in alerts
    ]  # fmt: skip
    # The new ids come back in no particular order, and are matched to the alerts by what
    # each alert row holds; alerts alike in all of it are alike in every column, so which of
    # them gets which id changes nothing. Asking SQLAlchemy for the ids in the rows' order
    # (`sort_by_parameter_order`) makes it insert one row at a time on SQLite, which has no
    # INSERT form that keeps the order: a tenth of the send-hour pass at 100,000 participants
    # (docs/benchmarks.md, figure 3).
    found: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for alert_id, *key in session.execute(_RAISE, rows):
        found[tuple(key)].append(alert_id)
    for same in found.values():
        same.sort(reverse=True)  # popped lowest first: ids in the alerts' order when they can be
    ids = [found[(r["participant_id"], r["visit_id"], r["detail"], r["notices"])].pop()
           for r in rows]  # fmt: skip
    if not notify:
        log.warning("%d %s alerts stored; no coordinator chat is configured", len(ids), kind)
        return ids
    assert notify_chat_id is not None
    outbox.enqueue_many(
        session,
        [{"purpose": f"alert:{alert_id}", "chat_id": notify_chat_id, "text": a.notice,
          "not_before": not_before, "reply_markup": open_alert_markup(alert_id, language)}
         for alert_id, a in zip(ids, alerts, strict=True) if a.notice],
        now=now,
    )  # fmt: skip
    return ids


def open_alerts(
    session: Session, *, tier: str | None = None, kind: str | None = None,
    participant_id: int | None = None,
) -> Sequence[Alert]:  # fmt: skip
    query = select(Alert).where(Alert.status == AlertStatus.OPEN)
    if tier is not None:
        query = query.where(Alert.tier == tier)
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if participant_id is not None:
        query = query.where(Alert.participant_id == participant_id)
    return session.exec(query.order_by(col(Alert.id))).all()


def alerts_for(session: Session, participant_id: int) -> Sequence[Alert]:
    query = select(Alert).where(Alert.participant_id == participant_id)
    return session.exec(query.order_by(col(Alert.id))).all()


def resolve_alerts(
    session: Session, *, participant_id: int, kind: str, now: dt.datetime
) -> list[int]:
    """Resolve a participant's open alerts of one kind; return their ids."""
    resolved = []
    for alert in open_alerts(session, kind=kind, participant_id=participant_id):
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = now
        session.add(alert)
        assert alert.id is not None
        resolved.append(alert.id)
    return resolved
