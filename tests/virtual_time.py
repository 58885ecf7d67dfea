"""Virtual seconds for retry_after windows: the sandbox and the bot share them, nobody sleeps.

The sandbox measures Telegram's retry_after windows on `VirtualSeconds`; the bot waits them out
on the same clock (the bot's rate limiter through `virtual_time_in_rate_limiter`,
the outbox sender through `OutboxSender.monotonic`). Virtual time moves only when the test moves
it: `run_virtually` moves it when the work waits on it, and the test between flushes.

`BotRequests` records, on the bot's side, when each request started and when each 429 came back.
The sender has several chats' requests in flight at once, so requests made before the bot could
know of a window reach the sandbox inside it; what the bot controls, and what is checked, is
that it starts no request between receiving a 429 and the end of its window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from bot.deps import BotApp
from bot.ratelimit import WindowedRateLimiter
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


def virtual_time_in_rate_limiter(bot: BotApp, seconds: VirtualSeconds) -> None:
    """The bot's rate limiter waits out a 429's retry_after on virtual time."""
    limiter = bot.bot.rate_limiter
    assert isinstance(limiter, WindowedRateLimiter)
    limiter.clock, limiter.sleep = seconds, seconds.sleep


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


class BotRequests:
    """The bot's Bot API requests on virtual time: their starts, and each 429's window."""

    def __init__(self, seconds: Callable[[], float]) -> None:
        self.seconds = seconds  # VirtualSeconds, or the event loop's clock
        self.started: list[float] = []
        self.windows: list[tuple[float, float]] = []  # (429 received, window ends)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from telegram.request import HTTPXRequest

        original = HTTPXRequest.do_request
        record = self

        async def do_request(self: HTTPXRequest, url: str, *args: Any, **kwargs: Any) -> Any:
            if url.endswith("/getUpdates"):
                return await original(self, url, *args, **kwargs)
            record.started.append(record.seconds())
            code, payload = await original(self, url, *args, **kwargs)
            if code == 429:
                wait = json.loads(payload).get("parameters", {}).get("retry_after", 0)
                record.windows.append((record.seconds(), record.seconds() + wait))
            return code, payload

        monkeypatch.setattr(HTTPXRequest, "do_request", do_request)

    def made_inside_a_window(self) -> int:
        """Requests the bot started after receiving a 429 and before its window ended."""
        return sum(1 for t in self.started for got, end in self.windows if got < t < end)
