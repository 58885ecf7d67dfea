"""A fan-out of due prompts through the sandbox with Telegram's limits switched on.

One dispatch pass queues a prompt for every participant at once; the real bot (python-telegram-bot
with its rate limiter, through bot.sender) then delivers the outbox to the sandbox, which
answers 429 to anything over 30 messages a second overall or 1 a second per chat.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.setup import add_participants, scratch
from bot.deps import Deps
from bot.replies import sender
from bot.runtime import running
from models.db import transaction
from models.outbox import pending_count
from sandbox import Sandbox
from scheduler.clock import FrozenClock
from scheduler.dispatch import dispatch_pass

DUE = dt.datetime(2026, 4, 15, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
ENROLLED = dt.date(2026, 1, 15)


@dataclass
class FanoutFigures:
    prompts: int
    limit_per_second: float
    send_rate_setting: float
    delivered: int
    seconds: float
    rate: float
    ratio: float
    too_many_requests: int
    dispatch_seconds: float


async def measure(prompts: int, *, send_rate: float = 29.0) -> FanoutFigures:
    with tempfile.TemporaryDirectory(prefix="followup-fanout-") as workdir:
        async with Sandbox() as sandbox:
            sandbox.limits.enabled = True
            users = [sandbox.add_user() for _ in range(prompts)]
            engine, settings = scratch(
                Path(workdir), telegram_api_url=sandbox.api_url, telegram_token=sandbox.token,
                send_rate=send_rate,
            )  # fmt: skip
            add_participants(engine, [ENROLLED] * prompts, chat_ids=[u.id for u in users],
                             now=DUE - dt.timedelta(days=90))  # fmt: skip
            clock = FrozenClock(DUE)
            deps = Deps(settings=settings, engine=engine, clock=clock)
            start = time.perf_counter()
            dispatch_pass(engine, settings, DUE)
            dispatch_seconds = time.perf_counter() - start
            async with running(
                deps, token=sandbox.token, poll_timeout=1, with_scheduler=False
            ) as app:
                outbox = sender(app)
                calls_before = len(sandbox.state.calls)
                start = time.perf_counter()
                delivered = 0
                while True:
                    delivered += await outbox.flush()
                    with transaction(engine) as session:
                        if pending_count(session) == 0:
                            break
                    clock.advance(dt.timedelta(seconds=5))  # let retries fall due
                seconds = time.perf_counter() - start
            calls = sandbox.state.calls[calls_before:]
            too_many = sum(1 for c in calls if c.status == 429)
            engine.dispose()
    rate = delivered / seconds
    return FanoutFigures(prompts, sandbox.limits.global_rate, send_rate, delivered, seconds,
                         rate, rate / sandbox.limits.global_rate, too_many,
                         dispatch_seconds)  # fmt: skip
