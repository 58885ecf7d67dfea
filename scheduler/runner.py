"""APScheduler wiring: the wake-up clock for the periodic passes. It holds no study state."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    """A pass to run every `seconds`; what it does is decided by the database, not by the job."""

    name: str
    run: Callable[[], Awaitable[object]]
    seconds: float


def start_scheduler(jobs: Sequence[PeriodicJob]) -> AsyncIOScheduler:
    """Start an in-memory AsyncIOScheduler on the running loop with one interval job per pass.

    The jobs only wake the process. A missed run is harmless: the next pass asks the database
    what is due as of its own `now`, so coalescing and a short misfire grace lose nothing.
    """
    scheduler = AsyncIOScheduler(timezone=dt.UTC)
    for job in jobs:
        scheduler.add_job(
            _guarded(job),
            "interval",
            seconds=job.seconds,
            id=job.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(job.seconds)),
            next_run_time=dt.datetime.now(dt.UTC),
        )
    scheduler.start()
    return scheduler


def _guarded(job: PeriodicJob) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job.run()
        except Exception:
            # One failed pass must not stop the clock; the next pass retries from the rows.
            log.exception("periodic job %s failed", job.name)

    return run
