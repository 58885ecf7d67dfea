"""The outbox: one message per purpose, claimed by one sender at a time, leased against crashes."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from messages.instruments import latest
from models import outbox
from models.checkins import move_to, start_checkin
from models.db import transaction
from models.participants import participant_by_study_id
from models.tables import OutboxMessage, OutboxStatus, Visit
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant, open_visit


def _enqueue(engine: Engine, clock: FrozenClock, purpose: str) -> int | None:
    with transaction(engine) as session:
        return outbox.enqueue(session, purpose=purpose, chat_id=42, text="hello", now=clock())


def test_one_purpose_creates_one_message_at_most(engine: Engine, clock: FrozenClock) -> None:
    first = _enqueue(engine, clock, "prompt:P001:1")
    second = _enqueue(engine, clock, "prompt:P001:1")
    assert first is not None and second is None
    with transaction(engine) as session:
        assert outbox.pending_count(session) == 1


def test_concurrent_enqueues_of_one_purpose_make_one_row(
    engine: Engine, clock: FrozenClock
) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda _: _enqueue(engine, clock, "reminder-1:P001:1"), range(16)))
    assert len([i for i in ids if i is not None]) == 1


def test_claimed_rows_are_not_claimed_again_until_the_lease_runs_out(
    engine: Engine, clock: FrozenClock
) -> None:
    _enqueue(engine, clock, "a")
    with transaction(engine) as session:
        assert len(outbox.claim(session, now=clock())) == 1
    with transaction(engine) as session:
        assert outbox.claim(session, now=clock()) == []
    clock.advance(outbox.SEND_LEASE + dt.timedelta(seconds=1))
    with transaction(engine) as session:
        again = outbox.claim(session, now=clock())
    # A sender that died is not a failed attempt: the back-off after a later timeout stays short.
    assert len(again) == 1 and again[0].attempts == 0


def test_concurrent_claimers_never_share_a_row(engine: Engine, clock: FrozenClock) -> None:
    for n in range(60):
        _enqueue(engine, clock, f"m{n}")

    def claim_some(_: int) -> list[int]:
        with transaction(engine) as session:
            return [m.id for m in outbox.claim(session, now=clock(), limit=7) if m.id is not None]

    claimed: list[int] = []
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _round in range(20):
            claimed += [i for batch in pool.map(claim_some, range(6)) for i in batch]
    assert len(claimed) == len(set(claimed)) == 60


def test_sent_and_retried_rows(engine: Engine, clock: FrozenClock) -> None:
    first, second = _enqueue(engine, clock, "x"), _enqueue(engine, clock, "y")
    assert first is not None and second is not None
    with transaction(engine) as session:
        outbox.claim(session, now=clock())
        outbox.mark_sent(session, message_id=first, telegram_message_id=7, now=clock())
        outbox.mark_retry(session, message_id=second, at=clock() + dt.timedelta(seconds=30),
                          error="429")  # fmt: skip
    with transaction(engine) as session:
        assert outbox.claim(session, now=clock()) == []
    clock.advance(dt.timedelta(seconds=31))
    with transaction(engine) as session:
        assert [m.id for m in outbox.claim(session, now=clock())] == [second]


def test_a_row_this_sender_still_holds_is_not_claimed_again_after_its_lease(
    engine: Engine, clock: FrozenClock
) -> None:
    """A send waiting on the rate limiter outlives its lease; the same process must not claim
    and send the row a second time."""
    message_id = _enqueue(engine, clock, "a")
    assert message_id is not None
    with transaction(engine) as session:
        assert len(outbox.claim(session, now=clock())) == 1
    clock.advance(outbox.SEND_LEASE + dt.timedelta(seconds=1))
    with transaction(engine) as session:
        assert outbox.claim(session, now=clock(), in_hand={message_id}) == []
    with transaction(engine) as session:  # another process: the lease is its only guide
        assert len(outbox.claim(session, now=clock())) == 1


def _two_questions(engine: Engine, clock: FrozenClock) -> tuple[int, list[int]]:
    """A participant in a check-in with questions 1 and 2 queued, already moved on to question 2;
    returns the participant's id and the two outbox rows."""
    enroll_participant(engine, clock, "P001")
    visit_id = open_visit(engine, clock, "P001")
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.id is not None
        participant.telegram_chat_id = 42
        visit = session.get(Visit, visit_id)
        assert visit is not None
        q = latest()
        checkin = start_checkin(
            session, visit=visit, instrument=q.instrument, version=q.version, now=clock()
        )
        old = move_to(session, checkin=checkin, item="respondent", draft=None, now=clock())
        new = move_to(session, checkin=checkin, item="hospital", draft=None, now=clock())
        rows = [
            outbox.enqueue(session, purpose=f"checkin:{checkin.id}:{step}", chat_id=42,
                           text="q", now=clock(), participant_id=participant.id)
            for step in (old, new)
        ]  # fmt: skip
        return participant.id, [row for row in rows if row is not None]


def test_a_question_the_participant_has_moved_past_is_cancelled_not_sent(
    engine: Engine, clock: FrozenClock
) -> None:
    """A late copy of question n, after question n+1 was asked, would only confuse."""
    _, rows = _two_questions(engine, clock)
    claimed = []
    for message_id in rows:
        with transaction(engine) as session:
            claimed.append([m.id for m in outbox.claim(session, now=clock(), ids=[message_id])])
    assert claimed == [[], [rows[1]]]
    with transaction(engine) as session:
        stale = session.get(OutboxMessage, rows[0])
        assert stale is not None
        assert (stale.status, stale.last_error) == (OutboxStatus.CANCELLED, "superseded")


def test_a_claim_hands_over_what_it_claims(engine: Engine, clock: FrozenClock) -> None:
    """A claim is the hand-over: what it claims is marked handed over (a withdrawal then waits
    for its outcome), and a question moved past is cancelled."""
    participant_id, ids = _two_questions(engine, clock)
    with transaction(engine) as session:
        claimed = outbox.claim(session, now=clock(), ids=ids)
        assert [m.id for m in claimed] == [ids[1]] and claimed[0].handed_at is not None
        assert outbox.in_flight(session, participant_id=participant_id, now=clock()) == [ids[1]]
        stale = session.get(OutboxMessage, ids[0])
        assert stale is not None and stale.status == OutboxStatus.CANCELLED


def test_a_claim_returns_its_rows_as_it_wrote_them(engine: Engine, clock: FrozenClock) -> None:
    """The claimed rows are not read again after the claim's UPDATE: what the sender gets must
    be what the database now holds."""
    ids = [_enqueue(engine, clock, f"p{n}") for n in range(3)]
    lease = dt.timedelta(seconds=90)
    with transaction(engine) as session:
        claimed = outbox.claim(session, now=clock(), lease=lease)
    with transaction(engine) as session:
        stored = {m.id: m for m in session.exec(select(OutboxMessage)).all()}
    assert [m.id for m in claimed] == ids
    for message in claimed:
        row = stored[message.id]
        assert message.status == row.status == OutboxStatus.SENDING
        assert message.next_attempt_at == row.next_attempt_at == clock() + lease
        assert message.handed_at == row.handed_at == clock()
        assert (message.text, message.chat_id, message.attempts) == (row.text, row.chat_id,
                                                                      row.attempts)  # fmt: skip


def test_sends_recorded_together_each_keep_their_own_telegram_id(
    engine: Engine, clock: FrozenClock
) -> None:
    ids = [_enqueue(engine, clock, f"p{n}") for n in range(5)]
    with transaction(engine) as session:
        outbox.claim(session, now=clock())
        outbox.mark_all_sent(session, sent=[(i, 900 + n) for n, i in enumerate(ids) if i],
                             now=clock())  # fmt: skip
    with transaction(engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    assert [(r.status, r.telegram_message_id, r.sent_at) for r in rows] == [
        (OutboxStatus.SENT, 900 + n, clock()) for n in range(5)
    ]
