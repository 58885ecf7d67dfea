"""SQLite write transactions of one process take turns: urgent first, then in arrival order.

The turns are what lets a participant's answer in between the batches of a long dispatch pass
(docs/benchmarks.md, figure 3), so the pass must not take the lock back before a waiter wakes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from models.db import _WriterTurns, make_engine, transaction, writer_turns

WAIT = 10.0  # seconds; only reached if a turn is never handed over


def _in_thread(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work)
    thread.start()
    return thread


def _until_waiting(turns: _WriterTurns, threads: int) -> None:
    """Spin until that many other threads wait for a turn (no sleeping)."""
    while turns.waiting() != threads:
        threading.Event().wait(0)


def _takes_a_turn(
    turns: _WriterTurns, order: list[str], name: str, *, urgent: bool = False
) -> threading.Thread:
    """Start a thread that waits for a turn, notes `name` in `order` and gives the turn back."""

    def take() -> None:
        assert turns.acquire(urgent=urgent, timeout=WAIT)
        order.append(name)
        turns.release()

    return _in_thread(take)


def test_a_thread_that_asks_again_queues_behind_those_waiting() -> None:
    turns, order = _WriterTurns(), list[str]()
    assert turns.acquire(urgent=False, timeout=WAIT)
    waiter = _takes_a_turn(turns, order, "waiting writer")
    _until_waiting(turns, 1)
    turns.release()  # the pass's batch is done; its next batch asks at once
    assert turns.acquire(urgent=False, timeout=WAIT)
    order.append("next batch")
    turns.release()
    waiter.join()
    assert order == ["waiting writer", "next batch"]


def test_urgent_writers_go_first_then_each_in_arrival_order() -> None:
    turns, order = _WriterTurns(), list[str]()
    assert turns.acquire(urgent=False, timeout=WAIT)
    threads = []
    for name, urgent in (("first", False), ("second", False), ("alert", True), ("third", False)):
        threads.append(_takes_a_turn(turns, order, name, urgent=urgent))
        _until_waiting(turns, len(threads))
    turns.release()
    for thread in threads:
        thread.join()
    assert order == ["alert", "first", "second", "third"]


def test_a_turn_is_reentrant_and_a_waiter_that_gives_up_leaves_the_queue() -> None:
    turns = _WriterTurns()
    assert turns.acquire(urgent=False, timeout=WAIT)
    assert turns.acquire(urgent=True, timeout=WAIT)  # the same thread, nested
    gave_up: list[bool] = []
    waiter = _in_thread(lambda: gave_up.append(turns.acquire(urgent=False, timeout=0.0)))
    waiter.join()
    assert gave_up == [False] and turns.waiting() == 0
    turns.release()
    turns.release()
    assert _in_thread_acquires(turns)  # free again, and not handed to the one that gave up


def test_a_write_waiting_between_two_transactions_goes_before_the_second(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (who TEXT)"))
    turns, order = writer_turns(engine), list[str]()

    def answer() -> None:
        with transaction(engine) as session:
            session.execute(text("INSERT INTO t VALUES ('answer')"))

    with transaction(engine) as session:
        session.execute(text("INSERT INTO t VALUES ('batch 1')"))
        waiter = _in_thread(answer)
        _until_waiting(turns, 1)
    with transaction(engine) as session:
        session.execute(text("INSERT INTO t VALUES ('batch 2')"))
    waiter.join()
    with engine.connect() as conn:
        order = [row[0] for row in conn.execute(text("SELECT who FROM t ORDER BY rowid"))]
    engine.dispose()
    assert order == ["batch 1", "answer", "batch 2"]


class Interrupted(BaseException):
    """Stands in for KeyboardInterrupt in a thread that waits for its turn."""


def _interrupted_waiter(
    turns: _WriterTurns, seen: list[str], *, after_turn: bool, urgent: bool = False
) -> threading.Thread:
    """Start a thread that asks for a turn and is interrupted while it waits: before the turn
    comes, or just after it has been handed over. It notes "interrupted" in `seen`."""
    wait_for = turns._cond.wait_for

    def interrupted_wait(predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        if threading.current_thread().name != "interrupted":
            return wait_for(predicate, timeout)
        if after_turn:
            wait_for(predicate, timeout)
        raise Interrupted

    turns._cond.wait_for = interrupted_wait  # type: ignore[method-assign, assignment]

    def ask() -> None:
        try:
            turns.acquire(urgent=urgent, timeout=WAIT)
        except Interrupted:
            seen.append("interrupted")

    thread = threading.Thread(target=ask, name="interrupted")
    thread.start()
    return thread


def test_a_waiter_interrupted_as_its_turn_comes_passes_the_turn_on() -> None:
    turns, seen = _WriterTurns(), list[str]()
    assert turns.acquire(urgent=False, timeout=WAIT)
    first = _interrupted_waiter(turns, seen, after_turn=True)
    _until_waiting(turns, 1)
    second = _takes_a_turn(turns, seen, "next")
    _until_waiting(turns, 2)
    turns.release()
    first.join()
    second.join()
    assert sorted(seen) == ["interrupted", "next"]
    assert turns.acquire(urgent=False, timeout=0.0)  # free: nobody holds a turn they gave up


def test_a_waiter_interrupted_before_its_turn_leaves_the_queue() -> None:
    turns, seen = _WriterTurns(), list[str]()
    assert turns.acquire(urgent=False, timeout=WAIT)
    _interrupted_waiter(turns, seen, after_turn=False, urgent=True).join()
    assert seen == ["interrupted"] and turns.waiting() == 0
    turns.release()
    assert _in_thread_acquires(turns)


def _in_thread_acquires(turns: _WriterTurns) -> bool:
    taken: list[bool] = []

    def take() -> None:
        taken.append(turns.acquire(urgent=False, timeout=0.0))
        if taken[-1]:
            turns.release()

    _in_thread(take).join()
    return taken == [True]
