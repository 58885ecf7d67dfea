"""Nothing leaks: no token, no Telegram name and no message text in logs or the database."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.engine import Engine

from bot.deps import BotApp
from sandbox import Sandbox
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant
from tests.leaks import database_text, leaks, secrets_of


async def test_a_conversation_at_debug_level_leaks_nothing(
    bot: BotApp,
    sandbox: Sandbox,
    engine: Engine,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    invite = enroll_participant(engine, clock)
    user = sandbox.add_user(first_name="Xiuying", last_name="Zhangsurname", username="xy_private")
    stranger = sandbox.add_user(first_name="Strangername", username="nosy_neighbour")
    await sandbox.send_command(user, "start", invite.token)
    await sandbox.send_text(user, "My private worry about the scan results")
    await sandbox.send_command(user, "help")
    await sandbox.send_text(stranger, "Is my neighbour Zhang in your study please?")
    await sandbox.next_message(user.id, after=2)
    await sandbox.next_message(stranger.id, after=0)
    await sandbox.wait_until(lambda: not bot.bot._in_flight)  # type: ignore[attr-defined]

    secrets = secrets_of(sandbox)
    assert "Xiuying" in secrets.values()  # the check searches for what it should
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # DEBUG really was on
    assert leaks(logged, secrets) == []
    assert leaks(database_text(engine), secrets) == []


def test_the_leak_search_finds_a_planted_secret() -> None:
    secrets = {"first_name": "Xiuying", "bot token": "123:abc"}
    assert leaks("INFO bot: greeted Xiuying", secrets) == ["first_name"]
    assert leaks("INFO bot: participant P001 greeted", secrets) == []
