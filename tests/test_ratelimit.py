"""The overall sending limit serves the coordinators' chat first (bot/ratelimit.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.ratelimit import PriorityBucket, WindowedRateLimiter

RATE = 100  # a burst of 100, then one place every 10 ms: the queued grants take ~50 ms in all


async def test_the_bucket_serves_urgent_waiters_first_then_in_arrival_order() -> None:
    bucket = PriorityBucket(RATE)
    for _ in range(RATE):  # the burst is granted without waiting
        await bucket.acquire()
    order: list[str] = []

    async def take(name: str, *, urgent: bool) -> None:
        await bucket.acquire(urgent=urgent)
        order.append(name)

    queued = [("reply 1", False), ("reply 2", False), ("alert 1", True), ("gone", False),
              ("reply 3", False), ("alert 2", True)]  # fmt: skip
    tasks = {name: asyncio.ensure_future(take(name, urgent=u)) for name, u in queued}
    await asyncio.sleep(0)  # every task is now waiting in the bucket
    tasks["gone"].cancel()  # a waiter whose task is cancelled is skipped, not granted
    await asyncio.gather(*(t for name, t in tasks.items() if name != "gone"))
    assert order == ["alert 1", "alert 2", "reply 1", "reply 2", "reply 3"]


async def test_requests_to_the_coordinators_chat_go_before_queued_participant_replies() -> None:
    coordinators = -1001
    limiter = WindowedRateLimiter(
        overall_max_rate=RATE, max_retries=0, urgent_chats=frozenset({coordinators})
    )
    order: list[Any] = []

    async def call(chat_id: int | None) -> bool:
        async def request(*_: Any, **__: Any) -> bool:
            order.append(chat_id)
            return True

        data = {} if chat_id is None else {"chat_id": chat_id}
        return bool(await limiter.process_request(request, (), {}, "sendMessage", data, None))

    await asyncio.gather(*(call(n) for n in range(1, RATE + 1)))  # the burst
    order.clear()
    results = await asyncio.gather(call(1), call(2), call(coordinators), call(3), call(None))
    assert all(results)
    # A call naming no chat (answerCallbackQuery) is not paced; the notice takes the next place.
    assert order == [None, coordinators, 1, 2, 3]
