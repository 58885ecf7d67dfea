"""Fan-out with the limits off: the outbox sender's own cost against a bare send_message loop.

One dispatch pass queues a prompt for each of `prompts` participants (once, into a template
database that every run copies). The sandbox enforces no limit and the Bot's rate limiter is set
out of reach on both sides, so what is left is the work per message: the real sender
(bot/sender.OutboxSender) claims a window of rows, which is their hand-over under the
participants' locks, sends them `send_concurrency` chats at a time and records the sends; the
baseline calls `bot.send_message` for the same rows in a loop, one at a time. Both use the same
Bot, built by the real application.
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

from bench.runs import Paired, alternate, median
from bench.setup import add_participants, scratch
from bot.deps import Deps
from bot.replies import sender
from bot.runtime import running
from followup.settings import Settings
from models.db import make_engine, transaction
from models.outbox import pending_count
from models.tables import OutboxMessage
from sandbox import Sandbox
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


async def _run(template: Path, settings: Settings, prompts: int, *, bare: bool) -> SendFigures:
    with tempfile.TemporaryDirectory(prefix="followup-unlimited-") as workdir:
        path = Path(workdir) / "run.db"
        shutil.copy(template, path)
        async with Sandbox() as sandbox:
            users = [sandbox.add_user() for _ in range(prompts)]
            assert users[0].id == FIRST_USER_ID
            engine = make_engine(f"sqlite:///{path}")
            run_settings = settings.model_copy(update={
                "database_url": f"sqlite:///{path}", "telegram_api_url": sandbox.api_url,
                "telegram_token": sandbox.token, "send_rate": UNLIMITED,
            })  # fmt: skip
            deps = Deps(settings=run_settings, engine=engine, clock=FrozenClock(DUE))
            with transaction(engine) as session:
                queued = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))
                rows = [(m.chat_id, m.text, m.reply_markup) for m in queued]
            async with running(deps, token=sandbox.token, poll_timeout=1,
                               with_scheduler=False) as app:  # fmt: skip
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
            assert sandbox.sent_count() == delivered == prompts, (sandbox.sent_count(), delivered)
    return SendFigures(delivered, seconds)


async def _drain(flush: Callable[[], Awaitable[int]], deps: Deps) -> int:
    delivered = 0
    while True:
        delivered += await flush()
        with transaction(deps.engine) as session:
            if pending_count(session) == 0:
                return delivered


async def measure(prompts: int, *, runs: int) -> Paired[SendFigures, SendFigures]:
    """The bare loop and the real sender in alternation, `runs` times, over `prompts` prompts."""
    with tempfile.TemporaryDirectory(prefix="followup-unlimited-") as workdir:
        template, settings = prepare(Path(workdir), prompts)
        return await alternate(
            lambda: _run(template, settings, prompts, bare=True),
            lambda: _run(template, settings, prompts, bare=False),
            runs,
        )


def summary(paired: Paired[SendFigures, SendFigures]) -> dict[str, float]:
    rate = median(paired.subject, lambda f: f.rate)
    bare = median(paired.baseline, lambda f: f.rate)
    return {"rate": rate, "bare_rate": bare, "ratio": rate / bare}
