"""The inbox: every accepted update is recorded before Telegram is told it arrived."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Text, bindparam, delete, update
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
    connection = session.connection()
    rows = [
        {"update_id": int(u["update_id"]), "received_at": now,
         "payload": json.dumps(strip_names(u), ensure_ascii=False)}
        for u in updates
    ]  # fmt: skip
    connection.execute(_RECORD[connection.dialect.name == "postgresql"], rows)
    done = connection.execute(_HANDLED_AMONG, {"update_ids": [r["update_id"] for r in rows]})
    return set(done.scalars())


# Built once, as every poll records its batch: a new update is inserted, one seen before is not.
_RECORD = {
    pg: (postgresql.insert if pg else sqlite.insert)(InboxUpdate).on_conflict_do_nothing()
    for pg in (False, True)
}
_HANDLED_AMONG = select(InboxUpdate.update_id).where(
    col(InboxUpdate.update_id).in_(bindparam("update_ids", expanding=True)),
    col(InboxUpdate.done_at).is_not(None),
)


def mark_all_done(session: Session, *, update_ids: list[int], now: dt.datetime) -> None:
    session.connection().execute(_MARK_ALL_DONE, {"update_ids": update_ids, "now": now})


# Built once: an update's handled mark is written for every update, and building the
# statement cost more than running it.
_MARK_ALL_DONE = (
    update(InboxUpdate)
    .where(col(InboxUpdate.update_id).in_(bindparam("update_ids", expanding=True)))
    .values(done_at=bindparam("now"), payload=None)
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
