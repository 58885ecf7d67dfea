"""The outbox sender's own scheduling: chats a few at a time, each chat's messages in order."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.engine import Engine

from bot.deps import BotApp
from bot.replies import sender
from bot.sender import OutboxSender
from models import outbox
from models.db import transaction
from models.tables import OutboxMessage
from sandbox import Sandbox
from scheduler.clock import FrozenClock
from tests.factories import linked_participant


async def test_a_flush_serves_chats_concurrency_at_a_time_each_in_the_order_queued(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    users = [sandbox.add_user() for _ in range(5)]
    for n, user in enumerate(users):
        participant_id = linked_participant(engine, clock, f"L{n:03}", user.id)
        with transaction(engine) as session:
            for k in range(3):
                outbox.enqueue(session, purpose=f"news:L{n:03}:{k}", chat_id=user.id,
                               participant_id=participant_id, text=f"message {k}",
                               now=clock())  # fmt: skip
    out = sender(bot)
    out.concurrency = 2
    busy, peak = 0, 0
    real_deliver = OutboxSender._deliver

    async def deliver(self: OutboxSender, message: OutboxMessage, *args: object) -> int:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)
        try:
            await asyncio.sleep(0)  # a yield: another chat's send may start meanwhile
            return await real_deliver(self, message, *args)  # type: ignore[arg-type]
        finally:
            busy -= 1

    monkeypatch.setattr(OutboxSender, "_deliver", deliver)
    assert await out.flush() == 15
    assert peak == 2  # two chats at once, never more
    for user in users:
        assert [m.text for m in sandbox.messages_to(user.id)] == [f"message {k}" for k in range(3)]
