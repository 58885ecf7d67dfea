"""The append-only, hash-chained audit log."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from models.tables import AuditEvent

GENESIS = "0" * 64
# Any constant works: it names the one lock that serialises appends to the chain on PostgreSQL.
_AUDIT_LOCK_KEY = 0x4B383435


def _canonical(value: dict[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    """The hash of one row: its content and the hash of the row before it."""
    payload = json.dumps(
        [
            prev_hash,
            event.at.astimezone(dt.UTC).isoformat(),
            event.actor,
            event.action,
            event.entity,
            event.entity_id,
            event.before,
            event.after,
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record(
    session: Session,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit row to the chain inside the caller's transaction."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # Two transactions must not both read the same last hash and fork the chain.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_KEY})
    last = session.exec(select(AuditEvent.hash).order_by(col(AuditEvent.id).desc()).limit(1))
    prev_hash = last.first() or GENESIS
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=_canonical(before),
        after=_canonical(after),
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = chain_hash(prev_hash, event)
    session.add(event)
    session.flush()
    return event
