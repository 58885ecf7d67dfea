"""One dispatch pass at 1,000 / 10,000 / 100,000 participants: time and peak memory.

Enrolments are spread over a year, so on any day about 1/91 of the participants have a visit
due and as many again a reminder. Two passes are measured on each size:
- the send-hour pass (10:00 local), which queues that morning's prompts and reminders;
- an idle pass half an hour later, which is what 1,439 of the day's 1,440 passes look like.
Time is measured without tracemalloc; peak memory on a dry run of the same pass.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.setup import add_participants, scratch
from models.db import make_engine
from scheduler.dispatch import dispatch_pass

FIRST_ENROLMENT = dt.date(2025, 10, 1)
SEND_HOUR = dt.datetime(2026, 11, 2, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
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


def _timed(run: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def _peak(run: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def measure(participants: int, *, database_url: str | None = None) -> PassFigures:
    """`database_url`: an empty, migrated database to use instead of a scratch SQLite file."""
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
        busy_seconds, report = _timed(lambda: dispatch_pass(engine, settings, SEND_HOUR))
        later = SEND_HOUR + dt.timedelta(minutes=30)
        idle_seconds, _ = _timed(lambda: dispatch_pass(engine, settings, later))
        idle_peak = _peak(lambda: dispatch_pass(engine, settings, later))
        engine.dispose()
    return PassFigures(
        participants, int(visits), plan_seconds, busy_seconds,
        report.messages,
        busy_peak, idle_seconds, idle_peak,
    )  # fmt: skip
