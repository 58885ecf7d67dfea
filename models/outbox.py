"""Query functions for the outbox: enqueue once per purpose, claim, and mark the outcome."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import BigInteger, bindparam, cast, event, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from models.locks import current_checkin, held_participant, lock_participants
from models.tables import OutboxMessage, OutboxStatus
from study.consent import has_left_chat, may_send

# Reply markup is stored as JSON text. One encoder for the process: `json.dumps` with any
# option builds a new encoder per call, half the time of encoding a small markup (4,384 check-in
# buttons: 21 ms through `json.dumps`, 10 ms through one encoder).
_MARKUP = json.JSONEncoder(ensure_ascii=False)


def enqueue(
    session: Session,
    *,
    purpose: str,
    chat_id: int,
    text: str,
    now: dt.datetime,
    participant_id: int | None = None,
    reply_markup: dict[str, Any] | None = None,
    not_before: dt.datetime | None = None,
    hand_over: dt.timedelta | None = None,
) -> int | None:
    """Add a message unless one with this purpose exists; return its id, or None if it did.

    `hand_over`, a lease, says this transaction hands the message over itself
    (`hand_over_queued`). If the participant is locked in it (models.locks) and may be sent this
    now, the row is inserted already handed over, and that hand-over needs no statement of its
    own; otherwise it is inserted pending and handed over as any other row.
    """
    handed = hand_over is not None and _may_go_now(session, participant_id, purpose)
    values: dict[str, Any] = {
        "purpose": purpose,
        "chat_id": chat_id,
        "participant_id": participant_id,
        "text": text,
        "reply_markup": _stored_markup(reply_markup),
        "status": (OutboxStatus.SENDING if handed else OutboxStatus.PENDING).value,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now + hand_over if handed and hand_over else not_before or now,
        "handed_at": now if handed else None,
    }
    statement = _ENQUEUE[session.get_bind().dialect.name == "postgresql"]
    message_id: int | None = session.execute(statement, values).scalar_one_or_none()
    if handed and message_id is not None:
        session.info.setdefault(_HANDED_AT_INSERT, {})[message_id] = OutboxMessage(
            id=message_id, **values
        )
    return message_id


def _may_go_now(session: Session, participant_id: int | None, purpose: str) -> bool:
    """`hand_over_queued`'s checks, made before the insert: only under the participant's lock."""
    participant = held_participant(session, participant_id)
    return (
        participant is not None
        and may_send(participant, purpose)
        and not superseded(session, purpose)
    )


def _enqueue_statement(insert: Any) -> Any:
    """One INSERT … ON CONFLICT DO NOTHING RETURNING id, built once per dialect (every answer
    queues its reply with it). On the table, not the model: the ORM's bulk-insert path adds
    nothing to a statement that returns only the id."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    return (
        insert(table)
        .values({name: bindparam(name) for name in _ENQUEUED})
        .on_conflict_do_nothing(index_elements=["purpose"])
        .returning(table.c.id)
    )


_ENQUEUED = ("purpose", "chat_id", "participant_id", "text", "reply_markup", "status",
             "attempts", "created_at", "next_attempt_at", "handed_at")  # fmt: skip
# Rows `enqueue` inserted already handed over, by id, until `hand_over_queued` takes them.
_HANDED_AT_INSERT = "followup_outbox_handed_at_insert"


@event.listens_for(Session, "after_transaction_end")
def _forget_handed(session: Session, transaction: SessionTransaction) -> None:
    """A commit or rollback ends the transaction the rows were handed over in."""
    if transaction.parent is None:
        session.info.pop(_HANDED_AT_INSERT, None)


_ENQUEUE = {False: _enqueue_statement(sqlite.insert), True: _enqueue_statement(postgresql.insert)}
# `enqueue_many`'s statement, built once per dialect and on the table for the same reason: the
# send-hour pass queues thousands of rows with it, and skipping the ORM's bulk-insert path took
# that pass from 236 to 193 ms at 30,000 participants (docs/benchmarks.md, figure 3).
_ENQUEUE_MANY = {
    postgres: insert(OutboxMessage.__table__).on_conflict_do_nothing(index_elements=["purpose"])  # type: ignore[attr-defined]
    for postgres, insert in ((False, sqlite.insert), (True, postgresql.insert))
}


def encode_markup(markup: dict[str, Any]) -> str:
    """Reply markup as the outbox stores it: JSON text."""
    return _MARKUP.encode(markup)


def _stored_markup(markup: dict[str, Any] | str | None) -> str | None:
    if not markup:
        return None
    return markup if isinstance(markup, str) else encode_markup(markup)


def enqueue_many(session: Session, rows: Sequence[dict[str, Any]], *, now: dt.datetime) -> None:
    """`enqueue` for many messages in one statement; a purpose that exists is skipped.

    Each row has `purpose`, `chat_id`, `text` and optionally `participant_id`, `reply_markup`
    and `not_before`, as `enqueue` takes them; `reply_markup` may also be given already encoded
    (`encode_markup`).
    """
    if not rows:
        return
    values = [
        {
            "purpose": row["purpose"],
            "chat_id": row["chat_id"],
            "participant_id": row.get("participant_id"),
            "text": row["text"],
            "reply_markup": _stored_markup(row.get("reply_markup")),
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": row.get("not_before") or now,
        }
        for row in rows
    ]
    postgres = session.get_bind().dialect.name == "postgresql"
    session.execute(_ENQUEUE_MANY[postgres], values)


SEND_LEASE = dt.timedelta(minutes=2)
_CLAIMABLE = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)


def claim(
    session: Session,
    *,
    now: dt.datetime,
    ids: Sequence[int] | None = None,
    limit: int = 100,
    lease: dt.timedelta = SEND_LEASE,
    in_hand: Collection[int] = (),
) -> list[OutboxMessage]:
    """Move due messages to SENDING under a lease, handed over: about to go to Telegram.

    Only the claimer that flips a row sends it. A row left in SENDING by a crashed sender becomes
    claimable again when its lease runs out, which is the one way a message can go out twice.
    `in_hand` are the rows this process is still sending (waiting for the rate limiter, say):
    never claimed again, however long the wait, so a live sender's slow send is not repeated.

    The claim is the last check before Telegram. Under the participants' locks, taken first as a
    withdrawal takes them, a row to someone who may no longer be written is cancelled (left chat)
    or held (unreachable), and a question the participant has moved past is cancelled. The rows
    that go are marked `handed_at`: a withdrawal that finds one waits until its send is recorded.
    So the sender claims only what it will send within a moment (`bot/sender.OutboxSender.window`).
    """
    due = (col(OutboxMessage.status).in_(_CLAIMABLE), col(OutboxMessage.next_attempt_at) <= now)
    query = select(OutboxMessage).where(*due)
    if in_hand:
        query = query.where(col(OutboxMessage.id).not_in(list(in_hand)))
    if ids is not None:
        query = query.where(col(OutboxMessage.id).in_(ids))
    # Coordinator-chat rows (alert notices, which have no participant) jump the queue: a RED
    # notice must not wait behind a fan-out of prompts. Then oldest first.
    first = col(OutboxMessage.participant_id).is_not(None)
    candidates = session.exec(query.order_by(first, col(OutboxMessage.id)).limit(limit)).all()
    # The participant rows first, as a withdrawal does: the two cannot interleave. All of them in
    # one statement, in id order (models.locks), and the claimed rows re-read in one.
    participants = lock_participants(
        session, {m.participant_id for m in candidates if m.participant_id is not None}
    )
    going: list[int] = []
    for message in candidates:
        if message.participant_id is not None:
            participant = participants.get(message.participant_id)
            if participant is None or not may_send(participant, message.purpose):
                # After a withdrawal the row is cancelled (one queued by a pass that read the
                # participant just before the withdrawal committed). Otherwise it is held, not
                # dropped (an unreachable participant may write again), and moved back so held
                # rows never fill the head of the queue and starve the others.
                held = update(OutboxMessage).where(col(OutboxMessage.id) == message.id, *due)
                if participant is None or has_left_chat(participant):
                    held = held.values(status=OutboxStatus.CANCELLED.value, last_error="withdrawn")
                else:
                    held = held.values(next_attempt_at=now + lease)
                session.execute(held)
                continue
        if superseded(session, message.purpose):
            cancel = update(OutboxMessage).where(col(OutboxMessage.id) == message.id, *due)
            session.execute(cancel.values(status=OutboxStatus.CANCELLED.value,
                                          last_error="superseded"))  # fmt: skip
            continue
        if message.id is not None:
            going.append(message.id)
    if not going:
        return []
    # One guarded UPDATE for the batch: only the rows still due flip, and RETURNING says which
    # (on PostgreSQL another claimer may have flipped some since they were read).
    flipped = session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(going), *due)
        .values(status=OutboxStatus.SENDING.value, next_attempt_at=now + lease, handed_at=now)
        .returning(col(OutboxMessage.id))
        .execution_options(synchronize_session=False)
    )
    won = set(flipped.scalars())
    claimed = [m for m in candidates if m.id in won]
    for message in claimed:  # what the UPDATE wrote, set on the rows read above, not read again
        set_committed_value(message, "status", OutboxStatus.SENDING.value)
        set_committed_value(message, "next_attempt_at", now + lease)
        set_committed_value(message, "handed_at", now)
    return claimed


def hand_over_queued(
    session: Session, *, message_ids: Sequence[int], now: dt.datetime,
    lease: dt.timedelta = SEND_LEASE,
) -> list[OutboxMessage]:  # fmt: skip
    """Claim and hand over, in the transaction that queued them, messages to be sent at once.

    `claim` makes the same checks, but reads the rows first; here they are
    this transaction's own, so one UPDATE … RETURNING flips them and the checks follow, under
    the participants' lock, on what it returned. Rows `enqueue` inserted already handed over
    (`hand_over`) need no UPDATE; the same checks are made on them again. A row that may not go
    is put back as `claim` would (cancelled after a withdrawal, else held). A reply is sent
    without a transaction of its own before it.
    """
    if not message_ids:
        return []
    inserted: dict[int, OutboxMessage] = session.info.get(_HANDED_AT_INSERT, {})
    flipped = [inserted.pop(i) for i in message_ids if i in inserted]
    rest = [i for i in message_ids if i not in {m.id for m in flipped}]
    if rest:
        flipped += session.scalars(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(rest),
                   col(OutboxMessage.status) == OutboxStatus.PENDING.value)
            .values(status=OutboxStatus.SENDING.value, next_attempt_at=now + lease,
                    handed_at=now)
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False, populate_existing=True)
        ).all()  # fmt: skip
    participants = lock_participants(
        session, {m.participant_id for m in flipped if m.participant_id is not None}
    )
    going: list[OutboxMessage] = []
    cancelled: dict[str, list[int]] = {"withdrawn": [], "superseded": []}
    held: list[int] = []
    for message in flipped:
        assert message.id is not None
        participant = participants.get(message.participant_id or 0)
        if message.participant_id is not None and (
            participant is None or not may_send(participant, message.purpose)
        ):
            if participant is None or has_left_chat(participant):
                cancelled["withdrawn"].append(message.id)
            else:
                held.append(message.id)  # due again when the lease would have run out
        elif superseded(session, message.purpose):
            cancelled["superseded"].append(message.id)
        else:
            going.append(message)
    back = update(OutboxMessage).execution_options(synchronize_session=False)
    for error, ids in cancelled.items():
        if ids:
            session.execute(
                back.where(col(OutboxMessage.id).in_(ids))
                .values(status=OutboxStatus.CANCELLED.value, handed_at=None, last_error=error)
            )  # fmt: skip
    if held:
        session.execute(
            back.where(col(OutboxMessage.id).in_(held))
            .values(status=OutboxStatus.PENDING.value, handed_at=None)
        )  # fmt: skip
    order = {message_id: n for n, message_id in enumerate(message_ids)}
    return sorted(going, key=lambda m: order[m.id or 0])


_QUESTION = re.compile(r"^checkin:([0-9]+):([0-9]+)$")


def superseded(session: Session, purpose: str) -> bool:
    """A check-in question (or summary) the participant has moved past: sent late, after later
    questions, it would only confuse. Its purpose names the check-in and the step it showed."""
    found = _QUESTION.match(purpose)
    if found is None:
        return False
    checkin = current_checkin(session, int(found.group(1)))
    return checkin is None or checkin.step != int(found.group(2))


def in_flight(session: Session, *, participant_id: int, now: dt.datetime) -> list[int]:
    """Messages to this participant handed to Telegram whose outcome is not yet recorded.

    A row whose lease has run out belongs to a sender that died; it is not waited for.
    """
    query = select(OutboxMessage.id).where(
        col(OutboxMessage.participant_id) == participant_id,
        col(OutboxMessage.status) == OutboxStatus.SENDING,
        col(OutboxMessage.handed_at).is_not(None),
        col(OutboxMessage.next_attempt_at) > now,
    )
    return [i for i in session.exec(query).all() if i is not None]


def mark_all_sent(session: Session, *, sent: Sequence[tuple[int, int]], now: dt.datetime) -> None:
    """`mark_sent` for many (message id, Telegram message id) pairs, in one statement.

    The pairs travel as one parameter and are joined in the database (`_MARK_ALL_SENT`), so the
    statement is the same for any number of rows, built once and compiled once. An executemany
    of one UPDATE a row took about 40 ms for the seventy-odd sends of a moment while sending went
    on (each row's step hands Python's GIL to the event loop and waits to get it back), and the
    sender's next claim waited behind it for the writer's turn; a CASE on the id was compiled
    anew for each number of rows.
    """
    if not sent:
        return
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    pairs: dict[str, Any] = (
        {"sent_ids": [i for i, _ in sent], "sent_tgs": [t for _, t in sent]}
        if postgres
        else {"sent_pairs": json.dumps(sent)}
    )
    connection.execute(_MARK_ALL_SENT[postgres], {**pairs, "now": now})


def _mark_all_sent(*, on_postgres: bool) -> Any:
    """The UPDATE joined to (id, tg) rows from one parameter: PostgreSQL unnests two arrays,
    SQLite reads JSON."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    sent_at = bindparam("now", type_=table.c.sent_at.type)
    if on_postgres:
        ids = cast(bindparam("sent_ids"), ARRAY(BigInteger))
        tgs = cast(bindparam("sent_tgs"), ARRAY(BigInteger))
        pairs: Any = func.unnest(ids, tgs).table_valued("id", "tg").render_derived()
    else:
        rows = func.json_each(bindparam("sent_pairs")).table_valued("value")
        pairs = select(
            func.json_extract(rows.c.value, "$[0]").label("id"),
            func.json_extract(rows.c.value, "$[1]").label("tg"),
        ).subquery()
    return (
        table.update()
        .where(table.c.id == pairs.c.id)
        .values(status=OutboxStatus.SENT.value, sent_at=sent_at, telegram_message_id=pairs.c.tg)
    )


_MARK_ALL_SENT = {pg: _mark_all_sent(on_postgres=pg) for pg in (False, True)}


def mark_sent(
    session: Session, *, message_id: int, telegram_message_id: int, now: dt.datetime
) -> None:
    session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id)
        .values(
            status=OutboxStatus.SENT.value, sent_at=now, telegram_message_id=telegram_message_id
        )
    )


def mark_retry(
    session: Session, *, message_id: int, at: dt.datetime, error: str, failed: bool = False
) -> None:
    """Put a claimed row back, due at `at`. `failed` counts a failed attempt (a timeout, a 5xx),
    which lengthens the next back-off; a pause, a hold or a crash is not the message's fault."""
    session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == message_id,
            col(OutboxMessage.status) == OutboxStatus.SENDING,
        )
        .values(
            status=OutboxStatus.PENDING.value,
            next_attempt_at=at,
            last_error=error[:200],
            attempts=OutboxMessage.attempts + (1 if failed else 0),
        )
    )


def mark_failed(session: Session, *, message_id: int, error: str) -> None:
    session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id)
        .values(status=OutboxStatus.FAILED.value, last_error=error[:200])
    )


def pending_count(session: Session) -> int:
    query = select(OutboxMessage.id).where(
        col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING])
    )
    return len(session.exec(query).all())
