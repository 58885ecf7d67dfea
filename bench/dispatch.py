"""One dispatch pass at 1,000 / 10,000 / 100,000 participants: time and peak memory.

Enrolments are spread over a year, so on any day about 1/91 of the participants have a visit
due and as many again a reminder. Two passes are measured on each size:
- the send-hour pass (10:00 local), which queues that morning's prompts and reminders;
- an idle pass half an hour later, which is what 1,439 of the day's 1,440 passes look like.
Time is measured without tracemalloc; peak memory on a dry run of the same pass.

On a scratch SQLite file the send-hour pass's floor is measured too (bench/dispatch_floor.py):
the very rows that pass wrote, written again on a copy of the database as it stood before it,
with nothing read or decided, in as many transactions; the pass over its floor is what the
project's reads and decisions add, and the floor against 100 ms whether any pass could meet it.
The pass and its floor alternate `repeats` times, each pass on a fresh copy of the database as
it stood before the first, and the figures are their medians (the issue's rule for every
figure; one pass of a few hundred milliseconds swings by a third on a shared machine).

Then the next day's send-hour pass runs while another thread makes a participant's answer's
first write (its update stored in the inbox), every PROBE_EVERY seconds: how long an answer
waits behind the busiest pass, against the same writes with no pass running.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import itertools
import statistics
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Engine

from bench import dispatch_floor
from bench.setup import add_participants, scratch
from followup.settings import Settings
from models import inbox
from models.db import make_engine, transaction
from scheduler.dispatch import PassReport, dispatch_pass

FIRST_ENROLMENT = dt.date(2025, 10, 1)
SEND_HOUR = dt.datetime(2026, 11, 2, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
PROBE_EVERY = 0.02  # seconds between the probe's writes: 50 answers a second
QUIET_WRITES = 50  # the probe's writes with no pass running
_update_ids = itertools.count(1)
T = TypeVar("T")


@dataclass
class PassFigures:
    participants: int
    visits: int
    plan_seconds: float
    busy_seconds: float
    busy_messages: int
    busy_peak_mb: float
    idle_seconds: float
    idle_peak_mb: float
    next_seconds: float  # the next day's send-hour pass, with answers written meanwhile
    next_messages: int
    answer_writes: list[float]  # seconds each, during that pass
    quiet_writes: list[float]  # seconds each, with no pass running
    busy_missed: int = 0  # visits the send-hour pass marked missed (an alert and notice each)
    floor_seconds: float | None = None  # the send-hour pass's floor; None on PostgreSQL
    floor_rows: dict[str, int] = field(default_factory=dict)  # rows it wrote, per table
    floor_transactions: int = 0
    # Each alternation's (pass, floor) seconds, on copies of one database; `busy_seconds` and
    # `floor_seconds` are their medians. Empty on PostgreSQL, which takes one pass and no floor.
    alternations: list[tuple[float, float]] = field(default_factory=list)

    @property
    def floor_ratio(self) -> float | None:
        """The pass over its floor: the median of the alternations' ratios."""
        if not self.alternations:
            return None
        return statistics.median(busy / floor for busy, floor in self.alternations)

    @staticmethod
    def p50_max_ms(writes: list[float]) -> tuple[float, float]:
        return statistics.median(writes) * 1000, max(writes) * 1000


def _timed(run: Callable[[], T]) -> tuple[float, T]:
    """`run`'s wall time, after collecting the garbage the benchmark itself left (below)."""
    settle_garbage()
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def settle_garbage() -> None:
    """Collect the garbage this benchmark left before a timed run, so that the run does not pay
    for it. The floor's comparison of two databases (bench/dispatch_floor.py) and a size's set-up
    leave tens of thousands of objects that outlived two young collections; the next pass then
    met a full collection of the whole heap, 54-90 ms at 100,000 participants, in two of three
    passes, while the pass itself leaves 44 such objects (docs/benchmarks.md, figure 3).
    A bot pays for a full collection wherever its own garbage makes one due, not in the pass."""
    gc.collect()


def _peak(run: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _answer_writes(engine: Engine, done: threading.Event, writes: list[float], *,
                   count: int | None = None) -> None:  # fmt: skip
    """On its own thread: an answer's first write (its update stored in the inbox, as
    bot/durable.py does before a handler runs; an ordinary write, which takes its turn in arrival
    order) every PROBE_EVERY s until `done` is set or `count` writes are made; the wall time of
    each goes into `writes`."""
    while True:  # at least one write, however short the pass
        update = {"update_id": next(_update_ids), "callback_query": {"data": "0"}}
        start = time.perf_counter()
        with transaction(engine) as session:
            inbox.record(session, updates=[update], now=SEND_HOUR)
        writes.append(time.perf_counter() - start)
        if done.is_set() or (count is not None and len(writes) >= count):
            return
        done.wait(PROBE_EVERY)


def _with_answers(engine: Engine, run: Callable[[], T], *, count: int | None = None
                  ) -> tuple[list[float], T]:  # fmt: skip
    """Run `run` here while another thread writes as answers do; the writes' wall times."""
    done, writes = threading.Event(), list[float]()
    prober = threading.Thread(target=_answer_writes, args=(engine, done, writes),
                              kwargs={"count": count})  # fmt: skip
    prober.start()
    try:
        result = run()
    finally:
        if count is None:
            done.set()
        prober.join()
    return writes, result


Alternations = list[tuple[float, float]]  # each (pass, floor) in seconds


def _send_hours(engine: Engine, settings: Settings, workdir: Path, repeats: int
                ) -> tuple[Engine, PassReport, Alternations, dispatch_floor.Floor]:  # fmt: skip
    """On SQLite, the send-hour pass and its floor `repeats` times in alternation, each pass on
    a fresh copy of the database as it stood before the first (dry-run first, as that one was);
    returns an engine on the last pass's database, the pass's report, each (pass, floor) in
    seconds, and the last floor."""
    snapshot = workdir / "before-pass.db"
    dispatch_floor.copy_before(Path(str(engine.url.database)), snapshot)
    engine.dispose()
    figures: Alternations = []
    for n in range(repeats):
        database, floor_copy = workdir / f"pass-{n}.db", workdir / f"floor-{n}.db"
        dispatch_floor.copy_before(snapshot, database)
        engine = make_engine(f"sqlite:///{database}")
        dispatch_pass(engine, settings, SEND_HOUR, dry_run=True)  # the same warm-up as the first
        dispatch_floor.copy_before(database, floor_copy)  # the floor's copy, untimed
        seconds, report = _timed(functools.partial(dispatch_pass, engine, settings, SEND_HOUR))
        # Right away: the floor compares its copy with the database as this pass left it.
        floor = dispatch_floor.measure_floor(database, floor_copy)
        figures.append((seconds, floor.seconds))
        floor_copy.unlink()
        if n + 1 < repeats:  # a large database takes a quarter of a gigabyte a copy
            engine.dispose()
            database.unlink()
    return engine, report, figures, floor


def measure(participants: int, *, database_url: str | None = None, repeats: int = 1
            ) -> PassFigures:  # fmt: skip
    """`database_url`: an empty, migrated database to use instead of a scratch SQLite file (one
    send-hour pass, no floor). On SQLite the send-hour pass and its floor alternate `repeats`
    times on copies of one database, and their medians are the figures."""
    with tempfile.TemporaryDirectory(prefix="followup-bench-") as workdir:
        engine, settings = scratch(Path(workdir), coordinator_chat_id=-1000)
        if database_url is not None:
            engine.dispose()
            settings = settings.model_copy(update={"database_url": database_url})
            engine = make_engine(database_url)
        days = [FIRST_ENROLMENT + dt.timedelta(days=n % 365) for n in range(participants)]
        add_participants(engine, days, now=SEND_HOUR - dt.timedelta(days=2))
        # Plan everyone and catch up on the day before, so the measured passes are steady state.
        plan_seconds, _ = _timed(
            lambda: dispatch_pass(engine, settings, SEND_HOUR - dt.timedelta(hours=15))
        )
        with engine.connect() as conn:
            visits = conn.exec_driver_sql("SELECT count(*) FROM visit").scalar_one()
        busy_peak = _peak(lambda: dispatch_pass(engine, settings, SEND_HOUR, dry_run=True))
        alternations: Alternations = []
        floor = None
        if database_url is None:
            engine, report, alternations, floor = _send_hours(
                engine, settings, Path(workdir), max(1, repeats)
            )
            busy_seconds = statistics.median(busy for busy, _ in alternations)
        else:
            busy_seconds, report = _timed(lambda: dispatch_pass(engine, settings, SEND_HOUR))
        later = SEND_HOUR + dt.timedelta(minutes=30)
        idle_seconds, _ = _timed(lambda: dispatch_pass(engine, settings, later))
        idle_peak = _peak(lambda: dispatch_pass(engine, settings, later))
        next_day = SEND_HOUR + dt.timedelta(days=1)
        answers, (next_seconds, next_report) = _with_answers(
            engine, lambda: _timed(lambda: dispatch_pass(engine, settings, next_day))
        )
        quiet, _ = _with_answers(engine, lambda: None, count=QUIET_WRITES)
        engine.dispose()
    return PassFigures(
        participants, int(visits), plan_seconds, busy_seconds,
        report.messages,
        busy_peak, idle_seconds, idle_peak,
        next_seconds, next_report.messages, answers, quiet, busy_missed=report.missed,
        floor_seconds=statistics.median(f for _, f in alternations) if alternations else None,
        floor_rows=floor.rows if floor else {},
        floor_transactions=floor.transactions if floor else 0,
        alternations=alternations,
    )  # fmt: skip
