"""Conversation throughput: participants answering check-in questions at once, end to end.

Each participant sits at the dyspnoea question of an open check-in and answers `answers`
questions in a row through the sandbox's user side: press "0", wait for the next question, press
its "0". The real bot stores each answer and queues the next question in one transaction, then
delivers it through the outbox. The baseline is bench/echo.py's bare python-telegram-bot, which
makes the same three Bot API calls per press. One answer's latency runs from the press reaching
the sandbox to the sandbox recording the next question.

The floor (`measure_floor`) is that echo bot storing each press as one row before it answers,
through the bot's own unit of work, the presses that arrive together sharing a commit: the
least any bot that keeps an answer before replying must spend, with SQLite as shipped. The
design's floor (`measure_design_floor`, bench/floor.py) is that echo bot keeping everything
DESIGN.md asks of every bot here, and nothing else: what the bot spends beyond it is its own.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

from bench.echo import PRESSES, Press, Store, echo_running, store_presses
from bench.floor import floor_running
from bench.runs import Paired, alternate, median, percentile, rotate
from bench.setup import SCALE_ITEMS, add_participants, open_checkins, settings_for
from bot.deps import Deps
from bot.groupcommit import GroupCommit
from bot.runtime import running
from followup.settings import Settings
from models.db import make_engine
from sandbox import Sandbox
from sandbox.process import SandboxProcess
from sandbox.state import BotMessage, SandboxUser
from scheduler.clock import FrozenClock

NOW = dt.datetime(2026, 4, 15, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
ENROLLED = dt.date(2026, 1, 15)
POLL_TIMEOUT = 1.0  # the same long poll for both bots
CONCURRENCY = 64  # bot/app.py's PerChatUpdateProcessor(64); the echo bot gets the same
WAIT = 300.0  # seconds for one reply before the run is declared broken


@dataclass
class ConversationFigures:
    participants: int
    answers: int  # replies received
    seconds: float  # first press to last reply
    latencies_ms: list[float] = field(repr=False)
    # CPU time of the participants' own process over `seconds`, when it has one
    # (bench/participants.py): near 1.0, that side would be the ceiling, not the bot.
    server_busy: float | None = None

    @property
    def rate(self) -> float:
        return self.answers / self.seconds

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)


class Chats:
    """Hands every message the bot sends to a queue per chat, for the participant waiting there."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.seen = len(sandbox.state.sent)
        self.inbox: collections.defaultdict[int, asyncio.Queue[BotMessage]] = (
            collections.defaultdict(asyncio.Queue)
        )

    async def watch(self) -> None:
        sent = self.sandbox.state.sent
        while True:
            await self.sandbox.wait_until(lambda: len(sent) > self.seen, timeout=WAIT)
            for message in sent[self.seen :]:
                self.inbox[message.chat_id].put_nowait(message)
            self.seen = len(sent)


def zero_button(message: BotMessage) -> str:
    """The callback data of the message's "0" answer."""
    return next(data for _, data in message.buttons if data.rsplit(":", 1)[-1] == "0")


async def converse(
    sandbox: Sandbox, users: Sequence[SandboxUser], first_presses: Sequence[str], answers: int
) -> ConversationFigures:
    """Every user answers `answers` questions in a row, all users at once."""
    chats = Chats(sandbox)
    latencies: list[float] = []
    shown = [sandbox.new_bot_message(u.id, "<b>Question?</b>", None) for u in users]
    chats.seen = len(sandbox.state.sent)

    async def answer_all(n: int) -> None:
        message, data = shown[n], first_presses[n]
        for _ in range(answers):
            pressed = time.monotonic()
            await sandbox.press(users[n], message, data)
            message = await asyncio.wait_for(chats.inbox[users[n].id].get(), WAIT)
            latencies.append((message.sent_at - pressed) * 1000)
            data = zero_button(message)

    watcher = asyncio.create_task(chats.watch())
    start = time.monotonic()
    try:
        await asyncio.gather(*(answer_all(n) for n in range(len(users))))
    finally:
        watcher.cancel()
    seconds = time.monotonic() - start
    return ConversationFigures(len(users), len(latencies), seconds, latencies)


@dataclass
class Participants:
    """The sandbox and its users, wherever they run: where the bot connects, and a way to have
    the users answer (`converse(first_presses, answers)`)."""

    api_url: str
    token: str
    users: list[int]
    converse: Callable[[Sequence[str], int], Awaitable[ConversationFigures]]


@asynccontextmanager
async def participants_side(participants: int, *, apart: bool) -> AsyncIterator[Participants]:
    """The sandbox and `participants` users in this process, or (`apart`) in a child of its
    own (bench/participants.py), as Telegram and the participants' phones are."""
    if apart:
        async with SandboxProcess(users=participants, module="bench.participants") as child:

            async def ask(first_presses: Sequence[str], answers: int) -> ConversationFigures:
                figures = await child.ask({"first_presses": list(first_presses),
                                           "answers": answers})  # fmt: skip
                return ConversationFigures(**figures)

            yield Participants(child.api_url, child.token, child.users, ask)
        return
    async with Sandbox() as sandbox:
        users = [sandbox.add_user() for _ in range(participants)]

        async def here(first_presses: Sequence[str], answers: int) -> ConversationFigures:
            return await converse(sandbox, users, first_presses, answers)

        yield Participants(sandbox.api_url, sandbox.token, [u.id for u in users], here)


async def measure_bot(
    participants: int, answers: int, database_url: str, *, send_rate: float = 29.0,
    apart: bool = False,
) -> ConversationFigures:  # fmt: skip
    """The real bot on `database_url` (empty and migrated), with its settings as shipped."""
    async with participants_side(participants, apart=apart) as side:
        settings = settings_for(database_url, telegram_api_url=side.api_url,
                                telegram_token=side.token)  # fmt: skip
        settings = settings.model_copy(update={"send_rate": send_rate})  # may exceed 30: off
        engine = make_engine(database_url)
        add_participants(engine, [ENROLLED] * participants, chat_ids=side.users, now=NOW)
        checkins = open_checkins(engine, [f"B{n:06d}" for n in range(participants)], NOW)
        deps = Deps(settings=settings, engine=engine, clock=FrozenClock(NOW))
        try:
            async with running(deps, token=side.token, poll_timeout=POLL_TIMEOUT,
                               with_scheduler=False):  # fmt: skip
                return await side.converse([f"ci:{c}:1:0" for c in checkins], answers)
        finally:
            engine.dispose()


async def measure_echo(
    participants: int, answers: int, *, send_rate: float = 29.0, apart: bool = False,
    stored_on: str | None = None,
) -> ConversationFigures:  # fmt: skip
    """The bare python-telegram-bot echo bot on the same sandbox and wire settings.
    `stored_on`: the floor (`measure_floor`), storing each press on that database first."""
    async with participants_side(participants, apart=apart) as side:
        settings = settings_for(stored_on or "sqlite://", telegram_api_url=side.api_url,
                                telegram_token=side.token)  # fmt: skip
        settings = settings.model_copy(update={"send_rate": send_rate})
        async with _presses_stored(settings, stored_on) as store, echo_running(
            settings, token=side.token, poll_timeout=POLL_TIMEOUT, concurrency=CONCURRENCY,
            store=store,
        ):  # fmt: skip
            return await side.converse(["e:0:0"] * participants, answers)


@asynccontextmanager
async def _presses_stored(
    settings: Settings, database_url: str | None
) -> AsyncIterator[Store | None]:
    """Nothing to store without a database; else each press kept as one row, the way the bot
    writes (`Deps.db`: a worker thread and `transaction()`, so on SQLite `BEGIN IMMEDIATE`, the
    process's write turns and a commit under `synchronous=FULL`), with the presses that arrive
    together sharing one commit (bot/groupcommit.py), each waiting for its own row's."""
    if database_url is None:
        yield None
        return
    engine = make_engine(database_url)
    PRESSES.create(engine)
    deps = Deps(settings=settings, engine=engine, clock=FrozenClock(NOW))
    presses = GroupCommit[Press](lambda rows: deps.db(lambda s: store_presses(s, rows)))

    async def store(chat_id: int, data: str) -> None:
        await presses.add(Press(chat_id=chat_id, data=data, at=deps.now()))

    try:
        yield store
    finally:
        engine.dispose()


async def measure_design_floor(
    participants: int, answers: int, database_url: str, *, send_rate: float = 29.0,
    apart: bool = False,
) -> ConversationFigures:  # fmt: skip
    """The design's floor (bench/floor.py) on `database_url` (empty and migrated): the echo bot
    keeping what DESIGN.md's first principle asks every bot here to keep, at its cheapest."""
    async with participants_side(participants, apart=apart) as side:
        settings = settings_for(database_url, telegram_api_url=side.api_url,
                                telegram_token=side.token)  # fmt: skip
        settings = settings.model_copy(update={"send_rate": send_rate})
        engine = make_engine(database_url)
        deps = Deps(settings=settings, engine=engine, clock=FrozenClock(NOW))
        try:
            async with floor_running(deps, token=side.token, poll_timeout=POLL_TIMEOUT,
                                     concurrency=CONCURRENCY):  # fmt: skip
                return await side.converse(["e:0:0"] * participants, answers)
        finally:
            engine.dispose()


async def measure_floor(
    participants: int, answers: int, database_url: str, *, send_rate: float = 29.0,
    apart: bool = False,
) -> ConversationFigures:  # fmt: skip
    """The floor: the echo bot storing each press as one row on `database_url` (empty and
    migrated) before it answers, which any bot that keeps an answer before replying must do."""
    return await measure_echo(participants, answers, send_rate=send_rate, apart=apart,
                              stored_on=database_url)  # fmt: skip


@dataclass
class Measured(Paired[ConversationFigures, ConversationFigures]):
    """Echo bot (`baseline`) and real bot (`subject`), and the floors' runs if they were taken."""

    floor: list[ConversationFigures] = field(default_factory=list)
    design_floor: list[ConversationFigures] = field(default_factory=list)


async def measure(
    participants: int, answers: int, fresh_database: Callable[[], str], *, runs: int,
    send_rate: float = 29.0, apart: bool = False, floor: bool = False,
) -> Measured:  # fmt: skip
    """Echo bot and real bot in alternation, `runs` times; each bot run on a fresh database.
    `apart`: the sandbox and the participants in a process of their own (bench/participants.py).
    `floor`: the floors as well (`measure_floor`, `measure_design_floor`), taken between the
    two each time.
    """
    assert answers <= SCALE_ITEMS, "the no-alert path has this many questions in a row"
    echo = partial(measure_echo, participants, answers, send_rate=send_rate, apart=apart)
    bot = partial(measure_bot, participants, answers, send_rate=send_rate, apart=apart)
    if not floor:
        paired = await alternate(echo, lambda: bot(fresh_database()), runs)
        return Measured(paired.baseline, paired.subject)
    stored = partial(measure_floor, participants, answers, send_rate=send_rate, apart=apart)
    kept = partial(measure_design_floor, participants, answers, send_rate=send_rate, apart=apart)
    sides: list[Callable[[], Awaitable[ConversationFigures]]] = [
        echo, lambda: stored(fresh_database()), lambda: kept(fresh_database()),
        lambda: bot(fresh_database()),
    ]  # fmt: skip
    echoes, floors, design_floors, bots = await rotate(sides, runs)
    return Measured(echoes, bots, floors, design_floors)


def summary(paired: Measured) -> dict[str, float]:
    """Medians over the runs: answers/s, p50 and p99 of each side, and the throughput ratios."""
    bot, echo = paired.subject, paired.baseline
    figures = {
        "rate": median(bot, lambda f: f.rate), "echo_rate": median(echo, lambda f: f.rate),
        "p50": median(bot, lambda f: f.p50_ms), "echo_p50": median(echo, lambda f: f.p50_ms),
        "p99": median(bot, lambda f: f.p99_ms), "echo_p99": median(echo, lambda f: f.p99_ms),
    }  # fmt: skip
    figures["ratio"] = figures["rate"] / figures["echo_rate"]
    for name, runs in (("floor", paired.floor), ("design", paired.design_floor)):
        if runs:
            _add_floor(figures, name, runs)
    if all(f.server_busy is not None for f in bot + echo):
        figures["server_busy"] = median(bot, lambda f: f.server_busy or 0.0)
        figures["echo_server_busy"] = median(echo, lambda f: f.server_busy or 0.0)
    return figures


def _add_floor(figures: dict[str, float], name: str, runs: list[ConversationFigures]) -> None:
    """A floor's medians as `<name>_rate`, `_p50`, `_p99`, its ratio to the echo bot
    (`<name>_ratio`) and the bot's to it (`over_<name>`)."""
    figures[f"{name}_rate"] = median(runs, lambda f: f.rate)
    figures[f"{name}_p50"] = median(runs, lambda f: f.p50_ms)
    figures[f"{name}_p99"] = median(runs, lambda f: f.p99_ms)
    figures[f"{name}_ratio"] = figures[f"{name}_rate"] / figures["echo_rate"]
    figures[f"over_{name}"] = figures["rate"] / figures[f"{name}_rate"]
