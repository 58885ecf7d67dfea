"""`followup run` as a real process: it serves the sandbox and stops cleanly on a signal."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from messages.render import render
from sandbox import Sandbox
from sandbox.state import plain_text
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_serves_then_stops_cleanly_on_a_signal(
    sandbox: Sandbox, engine: Engine, database_url: str, tmp_path: Path, signum: signal.Signals,
) -> None:  # fmt: skip
    # The process reads the real clock, so the invite is issued now, not at the tests' date.
    invite = enroll_participant(engine, FrozenClock(dt.datetime.now(dt.UTC)))
    env = {
        **os.environ,
        "FOLLOWUP_DATABASE_URL": database_url,
        "FOLLOWUP_TELEGRAM_TOKEN": sandbox.token,
        "FOLLOWUP_TELEGRAM_API_URL": sandbox.api_url,
    }
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "followup", "run"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        user = sandbox.add_user()
        await sandbox.send_command(user, "start", invite.token)
        greeting = await sandbox.next_message(user.id, after=0, timeout=60)
        assert greeting.text == plain_text(render("greeting", "zh"))
        process.send_signal(signum)
        code = await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert code == 0
    output = (tmp_path / "run.log").read_text(errors="replace")
    assert "bot stopped" in output
    assert sandbox.token.split(":", 1)[1] not in output
