"""Telegram's sending limits: python-telegram-bot's AIORateLimiter, with one shared 429 window."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

JSON = bool | dict[str, Any] | list[dict[str, Any]]
MARGIN = 0.1  # seconds past retry_after, as python-telegram-bot waits: the clocks differ a little


class WindowedRateLimiter(AIORateLimiter):
    """AIORateLimiter's pacing, and after a 429 no request at all until its window has ended.

    AIORateLimiter retries a request that got a 429 once retry_after has passed, and holds the
    others meanwhile. But when several requests in flight get 429s with overlapping windows, it
    lets every request go as soon as the first of those waits ends (`finally: event.set()`), so
    requests go out inside a later window, which Telegram answers with more 429s. This limiter
    keeps the latest end of any window and holds each request, just before it is made, until then;
    the retries are its own. `clock` and `sleep` are the event loop's unless a test injects others.
    """

    def __init__(self, *, overall_max_rate: float, max_retries: int) -> None:
        super().__init__(overall_max_rate=overall_max_rate, max_retries=0)
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
        for attempt in range(retries + 1):
            try:
                return await super().process_request(
                    self._after_any_window(callback), args, kwargs, endpoint, data, 0
                )
            except RetryAfter as exc:
                wait = exc.retry_after
                seconds = wait.total_seconds() if isinstance(wait, dt.timedelta) else float(wait)
                self.closed_until = max(self.closed_until, self.clock() + seconds + MARGIN)
                log.warning("429 on %s: every request waits %.0f s", endpoint, seconds)
                if attempt == retries:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _after_any_window(
        self, callback: Callable[..., Coroutine[Any, Any, JSON]]
    ) -> Callable[..., Coroutine[Any, Any, JSON]]:
        async def made_after_the_window(*args: Any, **kwargs: Any) -> JSON:
            while (left := self.closed_until - self.clock()) > 0:
                await self.sleep(left)
            return await callback(*args, **kwargs)

        return made_after_the_window
