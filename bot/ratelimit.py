"""Telegram's sending limits: python-telegram-bot's AIORateLimiter, with one shared 429 window
and the coordinators' chat served first."""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

JSON = bool | dict[str, Any] | list[dict[str, Any]]
MARGIN = 0.1  # seconds past retry_after, as python-telegram-bot waits: the clocks differ a little


class PriorityBucket:
    """A leaky bucket like aiolimiter's `AsyncLimiter(rate, 1)`, which python-telegram-bot uses
    for its overall limit: a burst of `rate`, then `rate` a second. Waiters are served urgent
    first, then in arrival order. aiolimiter has no priorities, and without them a RED alert's
    notice waited behind every participant's reply already queued (docs/benchmarks.md, alerts).
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._level = 0.0
        self._stamp = 0.0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # (lane, order, future)
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    def _leak(self, now: float) -> None:
        self._level = max(0.0, self._level - (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, *, urgent: bool = False) -> None:
        """Take one place in the bucket, waiting for it if need be."""
        loop = asyncio.get_running_loop()
        self._leak(loop.time())
        if not self._waiters and self._level + 1 <= self.rate:
            self._level += 1
            return
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters, (0 if urgent else 1, next(self._order), future))
        self._wake()
        await future  # granted by _wake, which has taken the place on this waiter's behalf

    def _wake(self) -> None:
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._leak(loop.time())
        while self._waiters:
            future = self._waiters[0][2]
            if future.done():  # its task was cancelled while waiting
                heapq.heappop(self._waiters)
            elif self._level + 1 <= self.rate:
                heapq.heappop(self._waiters)
                self._level += 1
                future.set_result(None)
            else:
                break
        if self._waiters:
            self._timer = loop.call_later((self._level + 1 - self.rate) / self.rate, self._wake)


class WindowedRateLimiter(AIORateLimiter):
    """AIORateLimiter's pacing, and after a 429 no request at all until its window has ended.

    AIORateLimiter retries a request that got a 429 once retry_after has passed, and holds the
    others meanwhile. But when several requests in flight get 429s with overlapping windows, it
    lets every request go as soon as the first of those waits ends (`finally: event.set()`), so
    requests go out inside a later window, which Telegram answers with more 429s. This limiter
    keeps the latest end of any window and holds each request, just before it is made, until then;
    the retries are its own. `clock` and `sleep` are the event loop's unless a test injects others.

    The overall limit is a `PriorityBucket` in place of AIORateLimiter's own, so that requests to
    `urgent_chats` (the coordinators' chat: alert notices) take the next free place. Groups keep
    AIORateLimiter's 20-a-minute limit.
    """

    def __init__(
        self,
        *,
        overall_max_rate: float,
        max_retries: int,
        urgent_chats: frozenset[int] = frozenset(),
    ) -> None:
        super().__init__(overall_max_rate=overall_max_rate, max_retries=0)
        self._base_limiter = None  # the bucket below replaces it
        self.bucket = PriorityBucket(overall_max_rate)
        self.urgent_chats = urgent_chats
        self.retries = max_retries
        self.closed_until = 0.0
        self.clock: Callable[[], float] = lambda: asyncio.get_running_loop().time()
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        # The base class logs every 429 it passes on as an error with a traceback; ours is enough.
        logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSON]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSON:
        retries = self.retries if rate_limit_args is None else rate_limit_args
        chat_id = data.get("chat_id")
        paced = chat_id is not None  # as AIORateLimiter: the overall limit is on calls to a chat
        urgent = paced and str(chat_id) in {str(c) for c in self.urgent_chats}
        for attempt in range(retries + 1):
            try:
                return await super().process_request(
                    self._after_any_window(callback, paced=paced, urgent=urgent),
                    args, kwargs, endpoint, data, 0,
                )  # fmt: skip
            except RetryAfter as exc:
                wait = exc.retry_after
                seconds = wait.total_seconds() if isinstance(wait, dt.timedelta) else float(wait)
                self.closed_until = max(self.closed_until, self.clock() + seconds + MARGIN)
                log.warning("429 on %s: every request waits %.0f s", endpoint, seconds)
                if attempt == retries:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _after_any_window(
        self, callback: Callable[..., Coroutine[Any, Any, JSON]], *, paced: bool, urgent: bool
    ) -> Callable[..., Coroutine[Any, Any, JSON]]:
        async def made_after_the_window(*args: Any, **kwargs: Any) -> JSON:
            if paced:
                await self.bucket.acquire(urgent=urgent)
            while (left := self.closed_until - self.clock()) > 0:
                await self.sleep(left)
            return await callback(*args, **kwargs)

        return made_after_the_window
