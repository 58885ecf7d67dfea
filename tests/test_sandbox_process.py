"""`python -m sandbox` serves the sandbox in a process of its own (bench/unlimited.py uses it)."""

from __future__ import annotations

import httpx
import pytest
from telegram import Bot

from followup.logs import quiet_leaky_loggers
from sandbox.process import SandboxProcess


async def test_the_bot_sends_to_a_sandbox_in_its_own_process() -> None:
    quiet_leaky_loggers()
    async with SandboxProcess(users=2) as apart:
        assert len(apart.users) == 2 and apart.users[0] != apart.users[1]
        async with Bot(apart.token, base_url=apart.api_url) as bot:
            sent = await bot.send_message(apart.users[1], "<b>Hi</b>", parse_mode="HTML")
        assert sent.chat.id == apart.users[1]
        assert (await apart.stats())["sent"] == 1
        async with httpx.AsyncClient() as client:
            seen = await client.get(f"http://127.0.0.1:{apart.port}/sandbox/messages",
                                    params={"chat_id": apart.users[1]})  # fmt: skip
        assert [m["text"] for m in seen.json()] == ["Hi"]
    with pytest.raises(httpx.ConnectError):  # it stopped when its standard input closed
        await apart.stats()


async def test_a_sandbox_that_cannot_start_says_so() -> None:
    with pytest.raises(RuntimeError, match="exited with 2 before serving"):
        async with SandboxProcess(users=-1):  # refused by the command line
            pass
