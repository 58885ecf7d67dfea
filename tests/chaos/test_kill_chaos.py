"""Chaos: participants complete check-ins while the bot process is killed with SIGKILL.

The sandbox lives in the test process and outlives every kill; the bot is a real `followup run`
subprocess. Sizes come from the environment: `make test` (and so CI) runs the default 20
participants and 8 kills on each backend; `make chaos` is the full run, 200 and 30.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.deps import Deps
from bot.durable import DurableBot
from bot.sender import OutboxSender
from followup.settings import load_settings
from messages.render import LANGUAGES, render
from models.checkin_tables import CheckIn, CheckInAnswer, CheckInStatus
from models.db import transaction
from models.inbox import InboxUpdate
from models.tables import OutboxMessage, OutboxStatus
from sandbox import Sandbox, SandboxUser
from sandbox.state import BotMessage, plain_text
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant

pytestmark = pytest.mark.chaos

PARTICIPANTS = int(os.environ.get("FOLLOWUP_CHAOS_PARTICIPANTS", "20"))
KILLS = int(os.environ.get("FOLLOWUP_CHAOS_KILLS", "8"))
# Seconds one chat may wait for the bot. At Telegram's ~30 messages a second, one step for every
# participant at once takes participants × 2 / 29 s before any kill; each kill adds a start-up.
WAIT = float(os.environ.get("FOLLOWUP_CHAOS_WAIT", str(max(60.0, PARTICIPANTS * 0.75))))
ENGINE: list[Engine] = []
SEED = int(os.environ.get("FOLLOWUP_CHAOS_SEED", "7"))
ZONE = ZoneInfo("Asia/Shanghai")
# The answers of a participant with nothing to report, by button code, best first.
PREFERRED = ["self", "no", "8", "0", "+none", "~d", "~s", "~ok"]


class BotProcess:
    """`followup run` as a child process that can be killed and started again."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.killed_at: list[float] = []

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "followup", "run"], env=self.env, stdout=out, stderr=out
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1
        self.killed_at.append(time.monotonic())  # the sandbox's clock: after this, a new life

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _live_question(sandbox: Sandbox, chat_id: int) -> BotMessage | None:
    for message in reversed(sandbox.messages_to(chat_id)):
        if any(data.startswith("ci:") for _, data in message.buttons):
            return message
    return None


def _choose(message: BotMessage) -> str:
    """The participant's press, from what this copy of the question shows: Done once a tick
    shows (an untick button), else the first preferred answer."""
    codes = {data.rsplit(":", 1)[1]: data for _, data in message.buttons if data.startswith("ci:")}
    if "~d" in codes and any(code.startswith("-") for code in codes):
        return codes["~d"]
    for code in PREFERRED:
        if code in codes:
            return codes[code]
    return next(iter(codes.values()))


async def _wait(sandbox: Sandbox, user: SandboxUser, predicate: Callable[[], bool]) -> None:
    """Wait for the bot (restarts included); on a timeout, fail with the chat so far."""
    try:
        await sandbox.wait_until(predicate, timeout=WAIT)
    except TimeoutError:
        transcript = [(m.text[:60], m.buttons[:3]) for m in sandbox.messages_to(user.id)[-4:]]
        with transaction(ENGINE[0]) as session:
            rows = session.exec(
                select(OutboxMessage).where(OutboxMessage.chat_id == user.id)
            ).all()
            queued = [(r.purpose, r.status, r.attempts, r.last_error, r.next_attempt_at)
                      for r in rows]  # fmt: skip
            if ENGINE[0].dialect.name == "postgresql":
                activity = session.execute(text(
                    "SELECT pid, state, wait_event_type, wait_event, left(query, 80), "
                    "now() - xact_start FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                )).all()  # fmt: skip
                queued.append(("pg_stat_activity", activity))  # type: ignore[arg-type]
        raise AssertionError(
            f"chat {user.id} stalled; last messages: {transcript}; outbox: {queued}"
        ) from None


async def _play(sandbox: Sandbox, user: SandboxUser, token: str) -> int:
    """Link, wait for the prompt, answer everything, submit; return the presses made."""
    await sandbox.send_command(user, "start", token)
    await _wait(sandbox, user, lambda: _prompt(sandbox, user.id) is not None)
    prompt = _prompt(sandbox, user.id)
    assert prompt is not None
    await sandbox.press(user, prompt, prompt.buttons[0][1])
    presses = 0
    while True:
        await _wait(
            sandbox,
            user,
            lambda: _live_question(sandbox, user.id) is not None or _thanked(sandbox, user.id),
        )
        if _thanked(sandbox, user.id):
            return presses
        question = _live_question(sandbox, user.id)
        assert question is not None
        state = (len(sandbox.messages_to(user.id)), len(question.edits), question.buttons)
        await sandbox.press(user, question, _choose(question))
        presses += 1
        await _wait(
            sandbox,
            user,
            lambda q=question, s=state: (  # type: ignore[misc]
                (len(sandbox.messages_to(user.id)), len(q.edits), q.buttons) != s
            ),
        )


THANKS = {plain_text(render("checkin_thanks", language)) for language in LANGUAGES}


def _prompt(sandbox: Sandbox, chat_id: int) -> BotMessage | None:
    for message in sandbox.messages_to(chat_id):
        if any(data.startswith("checkin:open:") for _, data in message.buttons):
            return message
    return None


def _thanked(sandbox: Sandbox, chat_id: int) -> bool:
    return any(m.text in THANKS for m in sandbox.messages_to(chat_id))


def _polling_starts(sandbox: Sandbox) -> int:
    """How many bot processes have started polling (each bootstraps with deleteWebhook)."""
    return sandbox.state.call_counts["deleteWebhook"]


REPLAYED = re.compile(r"replaying (\d+) update\(s\) accepted but not handled")
# The bot's calls that do a participant's work; one full check-in takes about 60 of them.
WORK = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery")
SPACING = max(2, 60 * PARTICIPANTS // KILLS)  # the kills fall in about the first half of the run
LEASE = 3  # seconds; short, so a message a kill caught in flight goes out again soon


def _work(sandbox: Sandbox) -> int:
    return sum(sandbox.state.call_counts[method] for method in WORK)


async def _kill_at_random(
    bot: BotProcess, sandbox: Sandbox, rng: random.Random, done: asyncio.Event
) -> None:
    """Kill each bot process at a random moment of its work, then start another.

    The moment is a random number of calls into the process's life, so each life does some
    work however slowly the machine runs, and a kill lands mid-update, mid-dispatch or mid-send
    (between receiving an update and replying, between handing a message over and marking it
    sent). A wall-clock timer would, on a slow machine, kill every process before it did
    anything.
    """
    while bot.kills < KILLS and not done.is_set():
        started = bot.kills + 1
        await sandbox.wait_until(
            lambda n=started: _polling_starts(sandbox) >= n,  # type: ignore[misc]
            timeout=WAIT,
        )
        goal = _work(sandbox) + rng.randint(1, SPACING)
        idle = rng.uniform(LEASE + 1, LEASE + 5)  # a new life waits out the dead one's leases
        while not done.is_set() and (seen := _work(sandbox)) < goal:
            try:
                await sandbox.wait_until(
                    lambda s=seen: _work(sandbox) > s,  # type: ignore[misc]
                    timeout=idle,
                )
            except TimeoutError:
                break  # idle: kill it now
        if not done.is_set():
            bot.kill()
            bot.start()


async def test_check_ins_survive_sigkill(
    sandbox: Sandbox, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    ENGINE[:] = [engine]
    today = dt.datetime.now(ZONE).date()
    months = today.year * 12 + today.month - 1 - 3  # enrolled three months ago: visit 1 is due
    enrolled = dt.date(months // 12, months % 12 + 1, min(today.day, 28))
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    tokens = [
        enroll_participant(engine, clock, f"C{n:03d}", enrolled_on=enrolled).token
        for n in range(PARTICIPANTS)
    ]
    env = {
        **os.environ,
        "FOLLOWUP_DATABASE_URL": database_url,
        "FOLLOWUP_TELEGRAM_TOKEN": sandbox.token,
        "FOLLOWUP_TELEGRAM_API_URL": sandbox.api_url,
        "FOLLOWUP_DISPATCH_INTERVAL_SECONDS": "0.5",
        "FOLLOWUP_QUIET_HOURS": "00:00-00:00",
        "FOLLOWUP_SEND_HOUR": "0",
        "FOLLOWUP_SEND_LEASE_SECONDS": str(LEASE),
    }
    bot = BotProcess(env, Path(os.environ.get("FOLLOWUP_CHAOS_LOG", str(tmp_path / "bot.log"))))
    bot.start()
    done = asyncio.Event()
    killer = asyncio.create_task(_kill_at_random(bot, sandbox, random.Random(SEED), done))
    users = [sandbox.add_user() for _ in tokens]
    try:
        presses = await asyncio.gather(
            *(_play(sandbox, u, t) for u, t in zip(users, tokens, strict=True))
        )
        done.set()
        await killer
    finally:
        done.set()
        bot.stop()
    # A message caught in SENDING by the last kill waits out its lease; deliver it now.
    deps = Deps(
        settings=load_settings(database_url=database_url, telegram_api_url=sandbox.api_url),
        engine=engine,
        clock=FrozenClock(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)),
    )
    sender = DurableBot(deps, sandbox.token)
    await sender.initialize()
    await OutboxSender(sender, deps).flush()
    await sender.shutdown()

    with transaction(engine) as session:
        checkins = session.exec(select(CheckIn)).all()
        per_item = session.exec(
            select(CheckInAnswer.checkin_id, CheckInAnswer.item, func.count()).group_by(
                col(CheckInAnswer.checkin_id), col(CheckInAnswer.item)
            )
        ).all()
        unhandled = session.exec(
            select(InboxUpdate).where(col(InboxUpdate.done_at).is_(None))
        ).all()
    prompts = _copies(m for m in sandbox.state.sent if m.buttons and _is_prompt(m))
    questions = _copies(
        m for m in sandbox.state.sent if any(d.startswith("ci:") for _, d in m.buttons) or m.edits
    )
    repeats = sum(len(times) - 1 for times in prompts.values())
    asked_again = sum(len(times) - 1 for times in questions.values())
    unexplained = _unexplained(prompts, bot.killed_at) + _unexplained(questions, bot.killed_at)
    replays = [int(m) for m in REPLAYED.findall(bot.log.read_text(errors="replace"))]
    print(  # noqa: T201  (the figures for docs/reliability.md)
        f"chaos: {PARTICIPANTS} participants, {bot.kills} kills, {sum(presses)} presses, "
        f"{len(sandbox.state.sent)} bot messages, {repeats} repeated prompts, "
        f"{asked_again} questions asked again, {len(unexplained)} repeats no kill explains; "
        f"{len(replays)} restarts replayed {sum(replays)} updates a kill caught unhandled"
    )
    assert bot.kills >= KILLS
    assert len(checkins) == PARTICIPANTS
    assert all(c.status == CheckInStatus.COMPLETED for c in checkins)  # every participant finished
    assert all(count == 1 for _, _, count in per_item)  # no answer stored twice
    assert unhandled == []  # every accepted update was handled
    # A message repeats only when a kill caught its previous copy in flight: sent in the life
    # that kill ended, and sent again after it; so never more than once per kill.
    assert unexplained == []
    # The kills did land between receiving updates and replying: restarts replayed them.
    assert sum(replays) > 0
    assert _outbox_settled(engine)  # the outbox ends empty


def _is_prompt(message: BotMessage) -> bool:
    return any(data.startswith("checkin:open:") for _, data in message.buttons)


def _copies(messages: Iterable[BotMessage]) -> dict[tuple[int, str], list[float]]:
    """When each copy of one message reached each chat (a message is its first text)."""
    copies: dict[tuple[int, str], list[float]] = {}
    for m in messages:
        copies.setdefault((m.chat_id, m.edits[0] if m.edits else m.html), []).append(m.sent_at)
    return copies


# The sandbox runs in this process: a request the killed process sent just before it died can
# be handled here a moment after the kill was recorded. A new process needs seconds to start, so
# nothing it sends comes this close after a kill.
IN_FLIGHT_AT_KILL = 1.0  # seconds


def _unexplained(copies: dict[tuple[int, str], list[float]], kills: list[float]) -> list[str]:
    """Repeats that no kill explains. A copy after the first is explained by the last kill
    before it, if the copy before it reached the chat before that kill (or while the dying
    process's last requests were still being handled); so each kill explains at most one repeat
    of any one message."""
    unexplained = []
    for (chat_id, html), times in copies.items():
        times = sorted(times)
        for before, after in itertools.pairwise(times):
            ended = max((k for k in kills if k < after), default=None)
            if ended is None or before > ended + IN_FLIGHT_AT_KILL:
                near = [round(k - before, 2) for k in kills if abs(k - before) < 10]
                unexplained.append(
                    f"chat {chat_id}: {plain_text(html)[:30]!r} at {before:.2f} and "
                    f"{after:.2f}; kills {near} s from the first"
                )
    return unexplained


def _outbox_settled(engine: Engine) -> bool:
    with transaction(engine) as session:
        waiting = session.exec(
            select(OutboxMessage.id).where(
                col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING])
            )
        ).all()
    return not waiting
