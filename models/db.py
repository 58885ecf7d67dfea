"""Engine and unit-of-work factory for SQLite (WAL, foreign keys) and PostgreSQL."""

from __future__ import annotations

import heapq
import itertools
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine


def _secure_sqlite_file(url: str) -> None:
    """Create the SQLite file readable by its owner only, before SQLite creates it.

    SQLite gives its -wal and -shm side files the same mode as the database file.
    """
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    os.chmod(path, 0o600)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Autocommit at the driver level so that we issue BEGIN ourselves (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # FULL: an answer the participant saw acknowledged survives power loss, not just a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front. A deferred transaction that reads and
        # then writes can fail with SQLITE_BUSY_SNAPSHOT when another process wrote in between;
        # taking the lock first makes "read state, then change it" safe across processes.
        # A `read_transaction` only reads: in WAL mode it needs no lock and waits for no writer.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """Create the engine for `url`; SQLite files are created owner-only and put in WAL mode."""
    if url.startswith("sqlite"):
        _secure_sqlite_file(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=False
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


READ_ONLY = "followup_read_only"


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Session]:
    """A unit of work that only reads: one consistent snapshot, no write lock on SQLite.

    Writing in it is a mistake: on SQLite the write could fail with SQLITE_BUSY_SNAPSHOT.
    """
    # Closing the session ends the transaction (the pool rolls the connection back) and, unlike
    # a rollback, leaves the loaded objects readable.
    with Session(engine, expire_on_commit=False) as session:
        session.connection(execution_options={READ_ONLY: True})
        yield session


URGENT: ContextVar[bool] = ContextVar("followup_urgent_write", default=False)
"""Set while doing work a coordinator is waiting for (an alert and its notice): such write
transactions take their turn before the others of this process (`_one_writer`)."""
WRITER_WAIT = 30.0  # seconds, as SQLite's busy_timeout


class _WriterTurns:
    """A re-entrant lock handed to its waiters in turn: urgent ones first, each kind in order.

    Release hands the lock straight to the next waiter, so a thread that releases and asks
    again (a dispatch pass going on to its next batch) queues behind everyone already waiting
    instead of taking it back before they wake. No stdlib or well-kept library lock has
    priorities and hand-over, hence this one (the same queue as bot/ratelimit.PriorityBucket).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._waiting: list[tuple[int, int, int]] = []  # heap of (not urgent, ticket, thread)
        self._tickets = itertools.count()

    def acquire(self, *, urgent: bool, timeout: float) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._waiting:
                self._owner, self._depth = me, 1
                return True
            place = (0 if urgent else 1, next(self._tickets), me)
            heapq.heappush(self._waiting, place)
            try:
                if self._cond.wait_for(lambda: self._owner == me, timeout):
                    return True
            except BaseException:  # interrupted: a turn handed over meanwhile goes on
                if self._owner == me:
                    self._hand_on()
                else:
                    self._leave(place)
                raise
            self._leave(place)  # gave up; it was not handed the lock
            return False

    def release(self) -> None:
        with self._cond:
            self._depth -= 1
            if not self._depth:
                self._hand_on()

    def _hand_on(self) -> None:
        """Give the lock to the next waiter, or free it (with `_cond` held)."""
        if self._waiting:
            *_, self._owner = heapq.heappop(self._waiting)
            self._depth = 1
            self._cond.notify_all()
        else:
            self._owner, self._depth = None, 0

    def _leave(self, place: tuple[int, int, int]) -> None:
        self._waiting.remove(place)
        heapq.heapify(self._waiting)

    def waiting(self) -> int:
        """How many threads wait for a turn."""
        with self._cond:
            return len(self._waiting)


_writers: weakref.WeakKeyDictionary[Engine, _WriterTurns] = weakref.WeakKeyDictionary()
_writers_guard = threading.Lock()


def writer_turns(engine: Engine) -> _WriterTurns:
    """The turns this process's write transactions on `engine` take (SQLite only)."""
    with _writers_guard:
        return _writers.setdefault(engine, _WriterTurns())


@contextmanager
def _one_writer(engine: Engine) -> Iterator[None]:
    """On SQLite, let this process's write transactions take turns on a lock of their own.

    SQLite allows one writer; the others wait in its busy handler, which sleeps and polls (up
    to 100 ms between tries) and favours no one, so under a burst some transactions wait far
    longer than the work ahead of them. Queueing on a Python lock first wakes the next one as
    soon as the last commits, urgent ones (`URGENT`) first. Other processes still meet SQLite's
    own lock and busy timeout.
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    turns = writer_turns(engine)
    # If the turn does not come, SQLite's busy timeout decides as before.
    acquired = turns.acquire(urgent=URGENT.get(), timeout=WRITER_WAIT)
    try:
        yield
    finally:
        if acquired:
            turns.release()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error. The only place that commits."""
    with _one_writer(engine), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
