"""The outbox: one message per purpose, claimed by one sender at a time, leased against crashes."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine

from models import outbox
from models.db import transaction
from scheduler.clock import FrozenClock


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
    assert len(again) == 1 and again[0].attempts == 2


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
