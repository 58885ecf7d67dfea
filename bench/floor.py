"""The design's floor: the echo bot keeping what DESIGN.md's first principle asks every bot here
to keep, at its cheapest, and nothing more.

That principle asks a bot of this project to record each update in an inbox before its offset is
confirmed, to write an answer and the reply it causes (an outbox row, unique per purpose) in one
transaction before the reply goes, to mark the reply sent once Telegram took it, and to mark the
update handled. Here bench/echo.py's echo bot does exactly that, in the fewest commits: the bot's
own `DurableBot` records the inbox; one transaction writes the answer and its outbox row (one
prebuilt INSERT each) and marks the update handled (models/inbox.mark_all_done); one prebuilt
UPDATE marks the reply sent; every commit is shared with the writes that arrive with it
(bot/groupcommit.py), and one chat's updates run in order (bot/processor.py). Three commits an
answer, the first shared by a whole poll. (The handled mark in a commit of its own after the
reply, as the real bot writes it so that a press a crash interrupts after its commit is replayed
and a multiple-choice press gets its ticks drawn again, made this floor about a sixth slower:
docs/benchmarks.md.) No questionnaire, no alert rules, no templates, no row locks, no consent
checks: whatever the real bot spends beyond this floor is the project's own work, and this
floor's distance from the bare echo bot is what the design's durability costs (figure 1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypedDict

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    update,
)
from sqlmodel import Session
from telegram import Update
from telegram.ext import ApplicationBuilder, CallbackQueryHandler

from bench.echo import NEXT, EchoApp, next_question, next_step, polling, reply_to
from bot.deps import Deps
from bot.durable import DurableBot
from bot.groupcommit import GroupCommit
from bot.processor import PerChatUpdateProcessor
from models import inbox

# Not the study's schema: metadata of its own and no migration (`FLOOR.create_all(engine)`).
FLOOR = MetaData()
ANSWERS = Table(
    "bench_floor_answer",
    FLOOR,
    Column("id", Integer, primary_key=True),
    Column("chat_id", BigInteger, nullable=False),
    Column("data", String, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
OUTBOX = Table(
    "bench_floor_outbox",
    FLOOR,
    Column("id", Integer, primary_key=True),
    Column("purpose", String, nullable=False, unique=True),  # no reply can be queued twice
    Column("chat_id", BigInteger, nullable=False),
    Column("body", String, nullable=False),
    Column("status", String, nullable=False),
    Column("telegram_message_id", BigInteger),
    Column("sent_at", DateTime(timezone=True)),
)
# Built once, as the bot's own per-answer statements are.
_ANSWER = ANSWERS.insert()
_QUEUE = OUTBOX.insert()
_SENT = (
    update(OUTBOX)
    .where(OUTBOX.c.purpose == bindparam("b_purpose"))
    .values(status="sent", telegram_message_id=bindparam("b_message"), sent_at=bindparam("b_at"))
)


class Answer(TypedDict):
    """A press, the reply it causes and its update's handled mark, written in one transaction."""

    answer: dict[str, Any]
    reply: dict[str, Any]
    update_id: int


def keep_answers(session: Session, answers: Sequence[Answer], *, now: dt.datetime) -> None:
    """Each answer, its queued reply and its update's handled mark, in one transaction."""
    session.execute(_ANSWER, [a["answer"] for a in answers])
    session.execute(_QUEUE, [a["reply"] for a in answers])
    inbox.mark_all_done(session, update_ids=[a["update_id"] for a in answers], now=now)


def mark_sent(session: Session, sent: Sequence[dict[str, Any]]) -> None:
    session.execute(_SENT, list(sent))


def kept_first(deps: Deps) -> Callable[[Update, Any], Coroutine[Any, Any, None]]:
    """The echo bot's press: keep the answer, its reply and the handled mark, reply, then mark
    the reply sent."""
    keep = GroupCommit[Answer](
        lambda rows: deps.db(lambda s: keep_answers(s, rows, now=deps.now()))
    )
    sent = GroupCommit[dict[str, Any]](lambda rows: deps.db(lambda s: mark_sent(s, rows)))

    async def press(update: Update, context: Any) -> None:
        query = update.callback_query
        if query is None or query.message is None or query.data is None:
            return
        chat_id, data, now = query.message.chat.id, query.data, deps.now()
        purpose = f"echo:{chat_id}:{next_step(data)}"
        body = NEXT + next_question(next_step(data)).to_json()
        await keep.add(Answer(
            answer={"chat_id": chat_id, "data": data, "at": now},
            reply={"purpose": purpose, "chat_id": chat_id, "body": body, "status": "queued"},
            update_id=update.update_id,
        ))  # fmt: skip
        message = await reply_to(query, context.bot, chat_id, data)
        await sent.add({"b_purpose": purpose, "b_message": message.message_id, "b_at": deps.now()})

    return press


@asynccontextmanager
async def floor_running(
    deps: Deps, *, token: str, poll_timeout: float, concurrency: int
) -> AsyncIterator[EchoApp]:
    """The design's floor on `deps.engine` (migrated: the inbox is the study's own table),
    polling as bench/echo.echo_running does."""
    FLOOR.create_all(deps.engine)
    application: EchoApp = (
        ApplicationBuilder()
        .bot(DurableBot(deps, token))
        .concurrent_updates(PerChatUpdateProcessor(concurrency))
        .build()
    )
    application.add_handler(CallbackQueryHandler(kept_first(deps)))
    async with polling(application, poll_timeout):
        yield application
