"""Fan-out with the limits off: the outbox sender's own cost against a bare send_message loop.

One dispatch pass queues a prompt for each of `prompts` participants (once, into a template
database that every run copies). The sandbox enforces no limit and the Bot's rate limiter is set
out of reach on both sides, so what is left is the work per message: the real sender
(bot/sender.OutboxSender) claims a window of rows, which is their hand-over under the
participants' locks, sends them `send_concurrency` chats at a time and records the sends; the
baseline calls `bot.send_message` for the same rows in a loop, one at a time. Both use the same
Bot, built by the real application.

Each is measured twice: with the sandbox in a process of its own (`python -m sandbox`), as
Telegram's servers are, which is the goal's figure; and with the sandbox inside the bot's
process, where the server half of every request competes with the bot for one interpreter.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select
from telegram import InlineKeyboardMarkup
from telegram.constants import ParseMode

from bench.runs import Paired, median, rotate
from bench.setup import add_participants, scratch
from bot.deps import Deps
from bot.replies import sender
from bot.runtime import running
from followup.settings import Settings
from models.db import make_engine, transaction
from models.outbox import pending_count
from models.tables import OutboxMessage
from sandbox import Sandbox
from sandbox.process import SandboxProcess
from scheduler.clock import FrozenClock
from scheduler.dispatch import dispatch_pass

DUE = dt.datetime(2026, 4, 15, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
ENROLLED = dt.date(2026, 1, 15)
UNLIMITED = 1_000_000.0  # messages/s: the rate limiter never waits
FIRST_USER_ID = 500_001  # a fresh sandbox numbers its users from here


@dataclass
class SendFigures:
    messages: int  # delivered
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def prepare(workdir: Path, prompts: int) -> tuple[Path, Settings]:
    """A database with `prompts` pending prompts to sandbox users FIRST_USER_ID onwards."""
    engine, settings = scratch(workdir)
    add_participants(engine, [ENROLLED] * prompts,
                     chat_ids=[FIRST_USER_ID + n for n in range(prompts)],
                     now=DUE - dt.timedelta(days=90))  # fmt: skip
    report = dispatch_pass(engine, settings, DUE)
    assert report.messages == prompts, report
    engine.dispose()
    return workdir / "bench.db", settings


async def _run(
    template: Path, settings: Settings, prompts: int, *, bare: bool, own_process: bool
) -> SendFigures:
    with tempfile.TemporaryDirectory(prefix="followup-unlimited-") as workdir:
        path = Path(workdir) / "run.db"
        shutil.copy(template, path)
        if own_process:
            async with SandboxProcess(users=prompts) as apart:
                assert apart.users[0] == FIRST_USER_ID
                figures = await _send(path, settings, apart.api_url, apart.token, bare=bare)
                sent = int((await apart.stats())["sent"])
        else:
            async with Sandbox() as sandbox:
                users = [sandbox.add_user() for _ in range(prompts)]
                assert users[0].id == FIRST_USER_ID
                figures = await _send(path, settings, sandbox.api_url, sandbox.token, bare=bare)
                sent = sandbox.sent_count()
        assert sent == figures.messages == prompts, (sent, figures.messages)
    return figures


async def _send(path: Path, settings: Settings, api_url: str, token: str, *, bare: bool
                ) -> SendFigures:  # fmt: skip
    """Deliver every queued prompt in the database at `path` to the sandbox at `api_url`."""
    engine = make_engine(f"sqlite:///{path}")
    run_settings = settings.model_copy(update={
        "database_url": f"sqlite:///{path}", "telegram_api_url": api_url,
        "telegram_token": token, "send_rate": UNLIMITED,
    })  # fmt: skip
    deps = Deps(settings=run_settings, engine=engine, clock=FrozenClock(DUE))
    with transaction(engine) as session:
        queued = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))
        rows = [(m.chat_id, m.text, m.reply_markup) for m in queued]
    async with running(deps, token=token, poll_timeout=1, with_scheduler=False) as app:
        start = time.perf_counter()
        if bare:
            for chat_id, text, markup in rows:
                keyboard = (InlineKeyboardMarkup.de_json(json.loads(markup), app.bot)
                            if markup else None)  # fmt: skip
                await app.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML,
                                           reply_markup=keyboard)  # fmt: skip
            delivered = len(rows)
        else:
            delivered = await _drain(sender(app).flush, deps)
        seconds = time.perf_counter() - start
    engine.dispose()
    return SendFigures(delivered, seconds)


async def _drain(flush: Callable[[], Awaitable[int]], deps: Deps) -> int:
    delivered = 0
    while True:
        delivered += await flush()
        with transaction(deps.engine) as session:
            if pending_count(session) == 0:
                return delivered


@dataclass
class Measured:
    """Bare loop (baseline) against the sender (subject), with the sandbox in either place."""

    own_process: Paired[SendFigures, SendFigures]  # the goal's figure
    bot_process: Paired[SendFigures, SendFigures]


async def measure(prompts: int, *, runs: int) -> Measured:
    """The bare loop and the real sender, with the sandbox in its own process and in the bot's,
    each in turn, `runs` times over, over `prompts` prompts."""
    with tempfile.TemporaryDirectory(prefix="followup-unlimited-") as workdir:
        template, settings = prepare(Path(workdir), prompts)
        apart_bare, apart, together_bare, together = await rotate([
            lambda: _run(template, settings, prompts, bare=True, own_process=True),
            lambda: _run(template, settings, prompts, bare=False, own_process=True),
            lambda: _run(template, settings, prompts, bare=True, own_process=False),
            lambda: _run(template, settings, prompts, bare=False, own_process=False),
        ], runs)  # fmt: skip
    return Measured(Paired(apart_bare, apart), Paired(together_bare, together))


def summary(measured: Measured) -> dict[str, float]:
    """Median rates and their ratio; keys for the sandbox in the bot's process end `_together`."""
    figures: dict[str, float] = {}
    for suffix, paired in (("", measured.own_process), ("_together", measured.bot_process)):
        rate = median(paired.subject, lambda f: f.rate)
        bare = median(paired.baseline, lambda f: f.rate)
        figures |= {f"rate{suffix}": rate, f"bare_rate{suffix}": bare,
                    f"ratio{suffix}": rate / bare}  # fmt: skip
    return figures
