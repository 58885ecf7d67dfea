"""The inbox: every accepted update is recorded before Telegram is told it arrived."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Text, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, select

from models.types import UTCDateTime

# Names are not needed to run the study and must not be stored (STUDY.md, PIPL).
_NAME_FIELDS = ("first_name", "last_name", "username")
DONE_KEPT_FOR = dt.timedelta(days=2)


class InboxUpdate(SQLModel, table=True):
    """One update from Telegram; its payload is dropped once it has been handled."""

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    received_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    done_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )


def strip_names(value: Any) -> Any:
    """A copy of an update's JSON with every Telegram first, last and user name blanked."""
    if isinstance(value, dict):
        return {
            k: ("" if k in _NAME_FIELDS and isinstance(v, str) else strip_names(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [strip_names(v) for v in value]
    return value


def record(session: Session, *, updates: Sequence[dict[str, Any]], now: dt.datetime) -> set[int]:
    """Store new updates; return the ids already handled (duplicates to skip)."""
    if not updates:
        return set()
    ids = [int(u["update_id"]) for u in updates]
    insert = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    rows = [
        {"update_id": int(u["update_id"]), "received_at": now,
         "payload": json.dumps(strip_names(u), ensure_ascii=False)}
        for u in updates
    ]  # fmt: skip
    session.execute(insert(InboxUpdate).values(rows).on_conflict_do_nothing())
    done = session.exec(
        select(InboxUpdate.update_id).where(
            col(InboxUpdate.update_id).in_(ids), col(InboxUpdate.done_at).is_not(None)
        )
    )
    return set(done.all())


def mark_done(session: Session, *, update_id: int, now: dt.datetime) -> None:
    mark_all_done(session, update_ids=[update_id], now=now)


def mark_all_done(session: Session, *, update_ids: list[int], now: dt.datetime) -> None:
    session.execute(
        update(InboxUpdate)
        .where(col(InboxUpdate.update_id).in_(update_ids))
        .values(done_at=now, payload=None)
    )


def pending(session: Session) -> list[dict[str, Any]]:
    """Updates accepted but not yet handled, oldest first (to replay after a crash)."""
    rows = session.exec(
        select(InboxUpdate.payload)
        .where(col(InboxUpdate.done_at).is_(None))
        .order_by(col(InboxUpdate.update_id))
    ).all()
    return [json.loads(p) for p in rows if p]


def prune(session: Session, *, now: dt.datetime) -> int:
    """Forget handled updates after two days; Telegram may reuse ids after a week of quiet."""
    result = session.execute(
        delete(InboxUpdate).where(col(InboxUpdate.done_at) < now - DONE_KEPT_FOR)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
