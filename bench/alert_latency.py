"""Alert latency: a participant's RED answer reaching the bot to the coordinator's notice.

Participants each sit at the cough-severity question of an open check-in and all press "4 Very
severe" at once, through the sandbox and the real bot. The latency of one alert runs from the
press reaching the sandbox to the sandbox recording the alert notice in the coordinator chat.
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


def _prepare(deps: Deps, count: int) -> list[tuple[str, int]]:
    """(study id, check-in id) of participants waiting at the cough-severity question."""
    study_ids = [f"B{n:06d}" for n in range(count)]
    checkins = open_checkins(
        deps.engine, study_ids, NOW, answered=BEFORE_COUGH, waiting_at="cough_severity"
    )
    return list(zip(study_ids, checkins, strict=True))


async def measure(count: int = 50, *, database_url: str | None = None) -> LatencyFigures:
    """`database_url`: an empty, migrated database to use instead of a scratch SQLite file."""
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
                    pressed[study_id] = time.monotonic()
                    await sandbox.press(users[n], questions[n], f"ci:{checkin_id}:1:4")

                start = time.perf_counter()
                await asyncio.gather(*(press(n) for n in range(count)))
                await sandbox.wait_until(
                    lambda: len(sandbox.messages_to(boss.id)) >= count, timeout=120
                )
                seconds = time.perf_counter() - start
            engine.dispose()
    latencies = []
    for message in sandbox.messages_to(boss.id):
        study_id = next(s for s in pressed if s in message.text)
        latencies.append((message.sent_at - pressed[study_id]) * 1000)
    cuts = statistics.quantiles(latencies * 2, n=100, method="inclusive")  # n=1 needs two points
    return LatencyFigures(count, statistics.median(latencies), cuts[98], max(latencies), seconds)


def latency_rows(f: LatencyFigures, single: LatencyFigures) -> list[list[str]]:
    """Rows for docs/benchmarks.md, against one RED answer alone (measured in the same run)."""
    base = f"{single.p50_ms:.0f} ms (one answer alone)"
    return [
        [f"alert latency, {f.participants} RED answers at once: p50", "—",
         f"{f.p50_ms:.0f} ms", base, f"{f.p50_ms / max(single.p50_ms, 1e-9):.1f}×"],
        [f"alert latency, {f.participants} RED answers at once: p99", "< 500 ms",
         f"{f.p99_ms:.0f} ms (max {f.max_ms:.0f} ms, all in {f.seconds:.1f} s)", base,
         f"{f.p99_ms / max(single.p50_ms, 1e-9):.1f}×"],
    ]  # fmt: skip


async def measure_both(count: int = 50) -> tuple[LatencyFigures, LatencyFigures]:
    return await measure(count), await measure(1)


if __name__ == "__main__":
    many, one = asyncio.run(measure_both())
    for row in latency_rows(many, one):
        print(" | ".join(row))  # noqa: T201
