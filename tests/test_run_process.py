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
from sqlmodel import select

from bot.deps import Deps
from bot.replies import sender
from bot.runtime import running
from messages.render import render
from models import outbox
from models.db import transaction
from models.participants import participant_by_study_id
from models.tables import OutboxMessage, OutboxStatus
from sandbox import Fault, Sandbox
from sandbox.state import plain_text
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant
from tests.test_schedule_e2e import linked


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


async def test_stopping_lets_a_send_under_way_record_its_outcome(
    sandbox: Sandbox, deps: Deps, engine: Engine, clock: FrozenClock
) -> None:
    """A stop (SIGTERM at a deploy) while Telegram is taking a message: the bot waits for the
    answer and marks the row sent, so the next start does not send it again."""
    deps.settings = deps.settings.model_copy(update={"telegram_api_url": sandbox.api_url})
    user = await linked(sandbox, engine, clock)
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None
        outbox.enqueue(session, purpose="prompt:P001:1", chat_id=user.id, text="hello",
                       now=clock(), participant_id=participant.id)  # fmt: skip
    slow = Fault(kind="delay", method="sendMessage", delay=0.5, times=1)
    sandbox.faults.append(slow)
    async with running(deps, token=sandbox.token, poll_timeout=1, with_scheduler=False) as app:
        flushing = asyncio.ensure_future(sender(app).flush())
        await sandbox.wait_until(lambda: slow.fired == 1)  # the request is at Telegram: stop
    assert await flushing == 1
    with transaction(engine) as session:
        row = session.exec(select(OutboxMessage)).one()
    assert row.status == OutboxStatus.SENT
    assert len(sandbox.messages_to(user.id)) == 1
