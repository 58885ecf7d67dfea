"""Virtual seconds for retry_after windows: the sandbox and the bot share them, nobody sleeps.

The sandbox measures Telegram's retry_after windows on `VirtualSeconds`; the bot waits them out
on the same clock (python-telegram-bot's rate limiter through `virtual_sleep_in_rate_limiter`,
the outbox sender through `OutboxSender.monotonic`). Virtual time moves only when the test moves
it: `run_virtually` moves it when the work waits on it, and the test between flushes. The sender
has one request in flight at a time, so a request made too early reaches the sandbox at a virtual
time inside the window it breaks, and is counted there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from scheduler.clock import FrozenClock

T = TypeVar("T")


class VirtualSeconds:
    """A monotonic clock in seconds that moves only on `advance`; `sleep` waits on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._arrived = asyncio.Event()
        self.slept: list[float] = []  # every sleep asked for, for the report

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, woken))
        self._arrived.set()
        await woken

    def next_wake(self) -> float | None:
        return min((at for at, _ in self._sleepers), default=None)

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        due = [(at, f) for at, f in self._sleepers if at <= self.now]
        self._sleepers = [(at, f) for at, f in self._sleepers if at > self.now]
        for _, woken in due:
            if not woken.done():
                woken.set_result(None)

    async def sleeper_arrived(self) -> None:
        await self._arrived.wait()
        self._arrived.clear()


class _AsyncioWithVirtualSleep:
    """The `asyncio` module as python-telegram-bot's rate limiter sees it, with a virtual sleep."""

    def __init__(self, seconds: VirtualSeconds) -> None:
        self.sleep = seconds.sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


def virtual_sleep_in_rate_limiter(
    monkeypatch: pytest.MonkeyPatch, seconds: VirtualSeconds
) -> None:
    """AIORateLimiter waits out a 429's retry_after with asyncio.sleep: make that virtual."""
    monkeypatch.setattr("telegram.ext._aioratelimiter.asyncio", _AsyncioWithVirtualSleep(seconds))


async def run_virtually(
    work: Coroutine[Any, Any, T], seconds: VirtualSeconds, clock: FrozenClock,
    *, timeout: float = 60.0,
) -> T:  # fmt: skip
    """Run `work`; whenever it waits on virtual time, move both clocks to the next wake-up."""
    task = asyncio.ensure_future(work)
    while True:
        arrived = asyncio.ensure_future(seconds.sleeper_arrived())
        done, _ = await asyncio.wait({task, arrived}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if task in done:
            arrived.cancel()
            return task.result()
        if not done:
            arrived.cancel()
            task.cancel()
            raise TimeoutError("work neither finished nor waited on virtual time")
        wake = seconds.next_wake()
        if wake is not None:
            step = wake - seconds.now
            seconds.advance(step)
            clock.advance(dt.timedelta(seconds=step))
