"""No message after withdrawal, even under a race: the sender and withdrawals run at once.

Each round gives a fresh participant a few due messages, then starts an outbox flush and a
withdrawal together. A message the sandbox received after the withdrawal began to commit (its
own clock, time.monotonic) would break the rule; only the confirmation may arrive after it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.deps import BotApp
from bot.replies import sender
from messages.render import render
from models import outbox
from models.consent import Notify, Outcome, SendInFlight, with_sends_settled, withdraw
from models.db import transaction
from models.locks import lock_participant, lock_participants
from models.tables import AuditEvent, OutboxMessage, OutboxStatus, Participant
from sandbox import Fault, Sandbox
from scheduler.clock import FrozenClock
from study.consent import Scope
from tests.factories import linked_participant
from tests.test_locks import counting

ROUNDS = int(os.environ.get("FOLLOWUP_RACE_ROUNDS", "200"))


def _prepare(engine: Engine, clock: FrozenClock, study_id: str, chat_id: int, n: int) -> int:
    participant_id = linked_participant(engine, clock, study_id, chat_id)
    with transaction(engine) as session:
        for k in range(n):
            outbox.enqueue(session, purpose=f"news:{study_id}:{k}", chat_id=chat_id,
                           participant_id=participant_id, text=f"message {k}",
                           now=clock())  # fmt: skip
    return participant_id


def _withdraw(
    session: Session, wait_for_sends: bool, *, participant_id: int, scope: Scope, study_id: str,
    now: dt.datetime, committing: list[float],
) -> Outcome:  # fmt: skip
    committing.append(-1.0)  # an attempt; replaced by its time if it goes on to commit
    outcome = withdraw(
        session, participant_id=participant_id, scope=scope, samples=None, actor="participant",
        actor_id=f"participant:{study_id}", channel="chat", now=now, render=render,
        team_contact="team", notify=Notify(None), wait_for_sends=wait_for_sends,
    )  # fmt: skip
    committing[-1] = time.monotonic()  # the last instant before COMMIT is issued
    return outcome


async def _withdraw_soon(
    engine: Engine, work: Callable[[Session, bool], Outcome], start: Callable[[], Awaitable[None]]
) -> Outcome:
    await start()
    return await asyncio.to_thread(with_sends_settled, engine, work)


def _starter(rng: random.Random, sandbox: Sandbox, chat_id: int, n: int) -> Callable[[], Any]:
    """When the withdrawal starts: after some turns of the event loop, or the moment the sandbox
    has received the k-th message, while the sender has yet to record it (a send in flight)."""
    if rng.random() < 0.5:
        yields = rng.randint(0, 60)

        async def after_yields() -> None:
            for _ in range(yields):
                await asyncio.sleep(0)  # a yield to the event loop, not a wait

        return after_yields
    k = rng.randint(1, n)

    async def after_kth_send() -> None:
        await sandbox.wait_until(lambda: len(sandbox.messages_to(chat_id)) >= k)

    return after_kth_send


async def _at_once() -> None:
    pass


async def _flush_once_started(flush: Callable[[], Awaitable[int]], committing: list[float]) -> int:
    """The flush, once the withdrawal has begun its first attempt (on its worker thread)."""
    while not committing:
        await asyncio.sleep(0)  # a yield to the event loop, not a wait
    return await flush()


async def test_no_message_is_sent_after_a_withdrawal_commits(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    rng = random.Random(6)
    stats: Counter[str] = Counter()
    late: list[str] = []
    out = sender(bot)
    for round_ in range(ROUNDS):
        # A claim hands over what the limiter sends within a moment: a participant's messages
        # all at once, or (no look-ahead, one chat at a time) one claim for each message.
        out.concurrency, out.ahead_seconds = rng.choice([(8, 0.5), (1, 0.0)])
        study_id, scope = f"R{round_:04}", rng.choice([Scope.CONTACT, Scope.STUDY])
        user = sandbox.add_user()
        n = rng.randint(1, 4)
        participant_id = _prepare(engine, clock, study_id, user.id, n)
        if rng.random() < 0.5:  # slow answers: the withdrawal meets a send in flight
            sandbox.faults.append(Fault(kind="delay", method="sendMessage", chat_id=user.id,
                                        delay=0.01, times=None))  # fmt: skip
        committing: list[float] = []
        work = partial(_withdraw, participant_id=participant_id, scope=scope,
                       study_id=study_id, now=clock(), committing=committing)  # fmt: skip

        if rng.random() < 0.2:  # the withdrawal starts first and the flush meets it
            racing = _withdraw_soon(engine, work, _at_once)
            flushing = _flush_once_started(out.flush, committing)
        else:
            racing = _withdraw_soon(engine, work, _starter(rng, sandbox, user.id, n))
            flushing = out.flush()
        _, outcome = await asyncio.gather(flushing, racing)
        stats["retries_while_in_flight"] += len(committing) - 1
        await sender(bot).flush()  # the confirmation
        confirmation = render(f"withdrawal_done_{scope.value}", "zh", samples=None,
                              team_contact="team")  # fmt: skip
        received = sandbox.messages_to(user.id)
        before = [m for m in received if m.sent_at <= committing[-1]]
        after = [m for m in received if m.sent_at > committing[-1]]
        stats["sent_before_commit"] += len(before)
        stats["cancelled"] += outcome.cancelled_messages
        stats["rounds_with_sends_on_both_sides"] += bool(before) and outcome.cancelled_messages > 0
        late += [f"{study_id}: {m.text}" for m in after if m.text != confirmation]
        assert [m.text for m in after] == [confirmation], (study_id, [m.text for m in after])
    with transaction(engine) as session:
        records = session.exec(
            select(AuditEvent.after).where(AuditEvent.action == "consent.withdrawn")
        ).all()
    stats["recorded_possibly_delivered"] = sum(
        '"possibly_delivered_before_commit": []' not in (r or "") for r in records
    )
    print(f"\nrace over {ROUNDS} rounds on {engine.dialect.name}: {dict(stats)}")  # noqa: T201
    assert late == []
    assert stats["sent_before_commit"] > 0 and stats["cancelled"] > 0  # the race was real


def test_a_withdrawal_waits_for_a_send_in_flight_or_records_it(
    engine: Engine, clock: FrozenClock
) -> None:
    participant_id = _prepare(engine, clock, "P001", 4242, 1)
    with transaction(engine) as session:
        (message,) = outbox.claim(session, now=clock())  # and handed over
    assert message.id is not None
    message_id = message.id
    committing: list[float] = []
    work = partial(_withdraw, participant_id=participant_id, scope=Scope.CONTACT,
                   study_id="P001", now=clock(), committing=committing)  # fmt: skip
    with pytest.raises(SendInFlight), transaction(engine) as session:
        work(session, True)
    outcome = with_sends_settled(engine, work, tries=3, pause=0)
    assert len(committing) == 1 + 3 and outcome.cancelled_messages == 1
    with transaction(engine) as session:
        after = session.exec(
            select(AuditEvent.after).where(AuditEvent.action == "consent.withdrawn")
        ).one()
        # Afterwards only the confirmation can be claimed.
        later = outbox.claim(session, now=clock() + dt.timedelta(hours=1))
    assert [m.purpose.split(":")[0] for m in later] == ["withdrawal-confirmation"]
    assert f'"possibly_delivered_before_commit": [{message_id}]' in (after or "")


def test_held_messages_do_not_starve_the_queue(engine: Engine, clock: FrozenClock) -> None:
    held_id = _prepare(engine, clock, "P001", 4242, 3)
    _prepare(engine, clock, "P002", 4343, 1)
    with transaction(engine) as session:
        participant = session.get(Participant, held_id)
        assert participant is not None
        participant.unreachable = True  # may_message is False: its rows are held
        session.add(participant)
    with transaction(engine) as session:
        claimed = outbox.claim(session, now=clock(), limit=3)
    assert claimed == []  # the three held rows filled this batch, and were moved back
    with transaction(engine) as session:
        claimed = outbox.claim(session, now=clock(), limit=3)
    assert [m.purpose for m in claimed] == ["news:P002:0"]


def test_a_message_queued_just_before_a_withdrawal_is_cancelled_at_claim(
    engine: Engine, clock: FrozenClock
) -> None:
    participant_id = _prepare(engine, clock, "P001", 4242, 0)
    with transaction(engine) as session:
        participant = session.get(Participant, participant_id)
        assert participant is not None
        participant.chat_contact = False  # as a withdrawal leaves it
        session.add(participant)
        # A dispatch pass that read the participant before the withdrawal committed.
        outbox.enqueue(session, purpose="prompt:P001:1", chat_id=4242,
                       participant_id=participant_id, text="prompt", now=clock())  # fmt: skip
    with transaction(engine) as session:
        assert outbox.claim(session, now=clock()) == []
        status = session.exec(select(OutboxMessage.status)).one()
    assert status == "cancelled"


def test_a_claim_checks_each_message_as_if_alone(engine: Engine, clock: FrozenClock) -> None:
    """The sender claims and hands over many chats' messages in one transaction: a withdrawal
    that committed before it stops its own participant's message and nobody else's."""
    staying = _prepare(engine, clock, "P001", 4201, 1)
    leaving = _prepare(engine, clock, "P002", 4202, 1)
    work = partial(_withdraw, participant_id=leaving, scope=Scope.CONTACT, study_id="P002",
                   now=clock(), committing=[])  # fmt: skip
    assert with_sends_settled(engine, work, tries=1, pause=0).cancelled_messages == 1
    with transaction(engine) as session:
        claimed = outbox.claim(session, now=clock())
    # The one message that may still go to the participant who left is the confirmation.
    assert [(m.participant_id, m.purpose.split(":")[0]) for m in claimed] == [
        (staying, "news"),
        (leaving, "withdrawal-confirmation"),
    ]
    assert {m.handed_at for m in claimed} == {clock()}
    with transaction(engine) as session:
        stopped = session.exec(
            select(OutboxMessage).where(OutboxMessage.participant_id == leaving)
        ).all()
    assert [m.status for m in stopped if m.purpose.startswith("news:")] == [OutboxStatus.CANCELLED]


@pytest.mark.parametrize("as_inserted", [False, True], ids=["queued", "as-inserted"])
def test_a_handler_hands_over_what_it_queued_with_the_checks_of_a_claim(
    engine: Engine, clock: FrozenClock, as_inserted: bool
) -> None:
    """A check-in turn hands its reply over in its own transaction (outbox.hand_over_queued):
    rows to a participant who may be written go out, handed over; a participant who left chat
    contact gets nothing (cancelled), and an unreachable one is held for later, as at a claim.
    The same holds when the turn, holding the participants' locks, inserts its rows handed over
    already (`enqueue(hand_over=…)`), as bot/checkin.py does."""
    going, left, unreachable = (_prepare(engine, clock, f"P00{n}", 4300 + n, 0) for n in (1, 2, 3))
    with transaction(engine) as session:
        for participant_id, change in ((left, "chat_contact"), (unreachable, "unreachable")):
            participant = session.get(Participant, participant_id)
            assert participant is not None
            setattr(participant, change, change == "unreachable")
            session.add(participant)
    with transaction(engine) as session:
        if as_inserted:
            lock_participants(session, [going, left, unreachable])
        ids = [
            outbox.enqueue(
                session,
                purpose=f"reply:{n}:x",
                chat_id=4300 + n,
                participant_id=participant_id,
                text="reply",
                now=clock(),
                hand_over=outbox.SEND_LEASE if as_inserted else None,
            )
            for n, participant_id in ((1, going), (2, left), (3, unreachable))
        ]
        handed = outbox.hand_over_queued(
            session, message_ids=[i for i in ids if i is not None], now=clock()
        )
    assert [m.participant_id for m in handed] == [going]
    assert handed[0].status == OutboxStatus.SENDING and handed[0].handed_at == clock()
    with transaction(engine) as session:
        rows = {m.participant_id: m for m in session.exec(select(OutboxMessage)).all()}
    assert rows[going].status == OutboxStatus.SENDING and rows[going].handed_at is not None
    assert (rows[left].status, rows[left].last_error) == (OutboxStatus.CANCELLED, "withdrawn")
    assert rows[unreachable].status == OutboxStatus.PENDING
    assert rows[unreachable].handed_at is None
    # Held like a claim holds it: due again once the lease is over, and not before.
    with transaction(engine) as session:
        assert outbox.claim(session, now=clock()) == []


def test_a_reply_inserted_handed_over_needs_no_statement_to_hand_over(
    engine: Engine, clock: FrozenClock
) -> None:
    """Under the participant's lock, a reply that may go is inserted handed over: the hand-over
    runs no statement, returns the row as the database holds it, and a withdrawal then waits
    for its outcome as for any row handed over. Without the lock it is inserted pending."""
    participant_id = _prepare(engine, clock, "P001", 4301, 0)
    lease = dt.timedelta(seconds=45)
    with transaction(engine) as session:
        reply = partial(outbox.enqueue, session, chat_id=4301, participant_id=participant_id,
                        now=clock(), hand_over=lease)  # fmt: skip
        unlocked = reply(purpose="reply:1:x", text="first")
        lock_participant(session, participant_id)
        inserted = reply(purpose="reply:2:x", text="second")
        assert inserted is not None and unlocked is not None
        with counting(engine, selects_only=False) as statements:
            handed = outbox.hand_over_queued(session, message_ids=[inserted], now=clock())
        assert statements == [] and [m.id for m in handed] == [inserted]
        assert outbox.in_flight(session, participant_id=participant_id, now=clock()) == [inserted]
    with transaction(engine) as session:
        rows = {m.id: m for m in session.exec(select(OutboxMessage)).all()}
    stored = rows[inserted]
    assert (stored.status, stored.handed_at, stored.next_attempt_at) == (
        handed[0].status, handed[0].handed_at, handed[0].next_attempt_at,
    ) == (OutboxStatus.SENDING, clock(), clock() + lease)  # fmt: skip
    assert (stored.text, stored.chat_id, stored.attempts) == ("second", 4301, 0)
    assert rows[unlocked].status == OutboxStatus.PENDING and rows[unlocked].handed_at is None


async def test_a_flush_hands_over_only_what_the_limiter_sends_within_a_moment(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Each claim is a hand-over, and a withdrawal waits for what is handed over: so a flush
    claims what the limiter lets out in half a second (14 at 29/s), and claims more only once
    those are sent. A withdrawal further down a fan-out never waits for the whole of it."""
    for n in range(30):
        _prepare(engine, clock, f"F{n:03}", sandbox.add_user().id, 1)
    out = sender(bot)
    assert bot.bot_data["deps"].settings.send_rate == 29.0 and out.window(100) == 14
    claims: list[tuple[int, int]] = []  # (rows handed over and unsent before it, rows claimed)
    real_claim = outbox.claim

    def claim(session: Session, **kwargs: Any) -> list[OutboxMessage]:
        handed = session.exec(
            select(OutboxMessage.id).where(OutboxMessage.status != OutboxStatus.PENDING)
        ).all()  # handed over, whether their sends are recorded yet or not
        rows = real_claim(session, **kwargs)
        claims.append((len(handed) - sandbox.sent_count(), len(rows)))
        return rows

    monkeypatch.setattr(outbox, "claim", claim)
    assert await out.flush() == 30
    assert claims == [(0, 14), (0, 14), (0, 2), (0, 0)]


async def test_a_flush_records_each_send_at_once_not_when_its_window_is_done(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A window's sends are recorded in the background, within a moment of each: a send still
    under way does not hold back the record of one that went out (a crash would repeat it, and
    a withdrawal would wait for it)."""
    first, second = sandbox.add_user(), sandbox.add_user()
    _prepare(engine, clock, "W001", first.id, 1)
    _prepare(engine, clock, "W002", second.id, 1)
    out = sender(bot)
    out.record_linger = 0.0  # the next turn of the event loop
    recorded_meanwhile: list[bool] = []
    real_send = type(bot.bot).send_message

    def first_recorded() -> bool:
        with transaction(engine) as session:
            row = session.exec(
                select(OutboxMessage).where(OutboxMessage.chat_id == first.id)
            ).one()
            return row.status == OutboxStatus.SENT

    async def send_message(self: Any, chat_id: int, *args: Any, **kwargs: Any) -> Any:
        if chat_id == second.id:  # this send is still under way: the other is recorded first
            for _ in range(20_000):
                if sandbox.messages_to(first.id) and first_recorded():
                    break
                await asyncio.sleep(0)  # a yield to the event loop and the writer's thread
            recorded_meanwhile.append(first_recorded())
        return await real_send(self, chat_id, *args, **kwargs)

    monkeypatch.setattr(type(bot.bot), "send_message", send_message)
    assert await out.flush() == 2
    assert recorded_meanwhile == [True]
