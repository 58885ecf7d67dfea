"""The append-only, hash-chained audit log."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ChainBreak:
    """The first row where the chain does not hold, and what most likely happened there."""

    row_id: int | None
    position: int  # 0-based position in id order
    problem: str  # altered, deleted, inserted or out_of_order

    def describe(self) -> str:
        what = {
            "altered": "was altered: its content no longer matches its hash",
            "deleted": "follows a deleted row: the row it was chained to is missing",
            "inserted": "was inserted: the next row is chained to the row before it",
            "out_of_order": "is out of order: it is chained to a row that comes after it",
        }[self.problem]
        return f"audit row {self.row_id} (position {self.position + 1}) {what}"


def verify_chain(rows: Sequence[AuditEvent]) -> ChainBreak | None:
    """Check rows in id order; return the first break, or None if the whole chain holds.

    Deleting the newest rows leaves a shorter chain that still holds; export and keep the last
    hash elsewhere (`followup audit export`) to catch that.
    """
    hashes = [row.hash for row in rows]
    position_of = {h: i for i, h in enumerate(hashes)}
    for i, row in enumerate(rows):
        expected = hashes[i - 1] if i else GENESIS
        if chain_hash(row.prev_hash, row) != row.hash:
            return ChainBreak(row.id, i, "altered")
        if row.prev_hash == expected:
            continue
        points_to = position_of.get(row.prev_hash)
        if points_to is not None and points_to > i:
            return ChainBreak(row.id, i, "out_of_order")
        if points_to is not None and points_to < i - 1:
            return ChainBreak(rows[i - 1].id, i - 1, "inserted")
        return ChainBreak(row.id, i, "deleted")
    return None


def all_events(session: Session) -> Sequence[AuditEvent]:
    return session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()


def export_row(event: AuditEvent) -> dict[str, Any]:
    """One row as plain values, for CSV and JSON lines."""
    return {
        "id": event.id, "at": event.at.astimezone(dt.UTC).isoformat(), "actor": event.actor,
        "action": event.action, "entity": event.entity, "entity_id": event.entity_id,
        "before": event.before, "after": event.after, "prev_hash": event.prev_hash,
        "hash": event.hash,
    }  # fmt: skip
