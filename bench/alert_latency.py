"""Alert latency: a participant's RED answer reaching the bot to the coordinator's notice.

Participants each sit at the cough-severity question of an open check-in and all answer at
once, through the sandbox and the real bot: in the mixed run, `red` of them press "4 Very
severe" and the others "0 None" (the issue's "50 participants answering at once"); in the burst
run every one of them presses "4". The latency of one alert runs from the press reaching the
sandbox to the sandbox recording the alert notice in the coordinator chat.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.setup import add_participants, open_checkins, scratch
from bot.deps import Deps
from bot.runtime import running
from models.db import make_engine
from sandbox import Sandbox
from scheduler.clock import FrozenClock

NOW = dt.datetime(2026, 4, 15, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
BEFORE_COUGH = {"respondent": "self", "hospital": "no", "treatment": "immuno",
                "treatment_changed": "no", "progression": "no", "activity": "1",
                "dyspnoea_severity": "0"}  # fmt: skip


@dataclass
class LatencyFigures:
    participants: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    seconds: float
    red: int = 0  # RED answers among the participants' (all of them when equal)
    samples: int = 0  # latencies the percentiles are taken over (runs × red)


def _figures(latencies: list[float], participants: int, red: int, seconds: float
             ) -> LatencyFigures:  # fmt: skip
    cuts = statistics.quantiles(latencies * 2, n=100, method="inclusive")  # n=1 needs two points
    return LatencyFigures(participants, statistics.median(latencies), cuts[98], max(latencies),
                          seconds, red, len(latencies))  # fmt: skip


def _prepare(deps: Deps, count: int) -> list[tuple[str, int]]:
    """(study id, check-in id) of participants waiting at the cough-severity question."""
    study_ids = [f"B{n:06d}" for n in range(count)]
    checkins = open_checkins(
        deps.engine, study_ids, NOW, answered=BEFORE_COUGH, waiting_at="cough_severity"
    )
    return list(zip(study_ids, checkins, strict=True))


async def measure(
    count: int = 50, *, red: int | None = None, database_url: str | None = None
) -> tuple[list[float], float]:
    """Latencies (ms) of the RED answers among `count` answering at once, and the seconds all
    their notices took. `red`: how many answer RED, spread evenly (default: all).
    `database_url`: an empty, migrated database to use instead of a scratch SQLite file."""
    red = count if red is None else red
    reds = {n * count // red for n in range(red)}
    with tempfile.TemporaryDirectory(prefix="followup-alerts-") as workdir:
        async with Sandbox() as sandbox:
            boss = sandbox.add_user(language_code="en")
            users = [sandbox.add_user() for _ in range(count)]
            overrides = {"telegram_api_url": sandbox.api_url, "telegram_token": sandbox.token,
                         "coordinator_chat_id": boss.id, "coordinator_ids": frozenset({boss.id}),
                         "coordinator_language": "en"}  # fmt: skip
            engine, settings = scratch(Path(workdir), **overrides)
            if database_url is not None:
                engine.dispose()
                settings = settings.model_copy(update={"database_url": database_url})
                engine = make_engine(database_url)
            add_participants(engine, [dt.date(2026, 1, 15)] * count,
                             chat_ids=[u.id for u in users], now=NOW)  # fmt: skip
            deps = Deps(settings=settings, engine=engine, clock=FrozenClock(NOW))
            waiting = _prepare(deps, count)
            async with running(deps, token=sandbox.token, poll_timeout=1, with_scheduler=False):
                questions = [sandbox.new_bot_message(u.id, "<b>Cough?</b>", None) for u in users]
                pressed: dict[str, float] = {}

                async def press(n: int) -> None:
                    study_id, checkin_id = waiting[n]
                    answer = "4" if n in reds else "0"
                    if n in reds:
                        pressed[study_id] = time.monotonic()
                    await sandbox.press(users[n], questions[n], f"ci:{checkin_id}:1:{answer}")

                start = time.perf_counter()
                await asyncio.gather(*(press(n) for n in range(count)))
                await sandbox.wait_until(
                    lambda: len(sandbox.messages_to(boss.id)) >= red, timeout=120
                )
                seconds = time.perf_counter() - start
            engine.dispose()
    latencies = []
    for message in sandbox.messages_to(boss.id):
        study_id = next(s for s in pressed if s in message.text)
        latencies.append((message.sent_at - pressed[study_id]) * 1000)
    return latencies, seconds


@dataclass
class AlertFigures:
    mixed: LatencyFigures  # `red` RED answers among `participants` answering at once, pooled
    burst: LatencyFigures  # every participant answering RED at once
    single: LatencyFigures  # one RED answer alone: the baseline


async def measure_all(count: int = 50, *, red: int = 5, runs: int = 5) -> AlertFigures:
    """The mixed run `runs` times (its latencies pooled), the burst once, one answer alone."""
    pooled: list[float] = []
    longest = 0.0
    for _ in range(runs):
        latencies, seconds = await measure(count, red=red)
        pooled += latencies
        longest = max(longest, seconds)
    burst, burst_seconds = await measure(count)
    alone, alone_seconds = await measure(1)
    return AlertFigures(
        _figures(pooled, count, red, longest),
        _figures(burst, count, count, burst_seconds),
        _figures(alone, 1, 1, alone_seconds),
    )


def latency_rows(f: AlertFigures) -> list[list[str]]:
    """Rows for docs/benchmarks.md, against one RED answer alone (measured in the same run)."""
    base = f"{f.single.p50_ms:.0f} ms (one answer alone)"

    def ratio(ms: float) -> str:
        return f"{ms / max(f.single.p50_ms, 1e-9):.1f}×"

    m, b = f.mixed, f.burst
    mixed = (
        f"alert latency, {m.red} RED among {m.participants} answering at once "
        f"({m.samples} alerts over {m.samples // max(m.red, 1)} runs)"
    )
    burst = f"alert latency, all {b.participants} answering RED at once"
    return [
        [f"{mixed}: p50", "—", f"{m.p50_ms:.0f} ms", base, ratio(m.p50_ms)],
        [f"{mixed}: p99", "< 500 ms", f"{m.p99_ms:.0f} ms (max {m.max_ms:.0f} ms)", base,
         ratio(m.p99_ms)],
        [f"{burst}: p50", "—", f"{b.p50_ms:.0f} ms", base, ratio(b.p50_ms)],
        [f"{burst}: p99", "(< 500 ms)",
         f"{b.p99_ms:.0f} ms (max {b.max_ms:.0f} ms, all in {b.seconds:.1f} s)", base,
         ratio(b.p99_ms)],
    ]  # fmt: skip


if __name__ == "__main__":
    for row in latency_rows(asyncio.run(measure_all())):
        print(" | ".join(row))  # noqa: T201
