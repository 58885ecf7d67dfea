"""The baseline: a bare python-telegram-bot that echoes a button press, on the same wire settings.

It makes the same Bot API calls per press as the real bot's check-in answer (answer the callback,
edit the pressed message, send the next question with its buttons) and nothing else: no
database, no inbox, no outbox. Its Bot is configured like bot/durable.py's (connection pools,
rate limiter) and polls with the same timeout, so the ratio measures what the project adds.

With `store`, it first stores each press as one row (`store_presses`, through the bot's own
unit of work: bench/conversation.measure_floor): the least a bot can do that keeps an answer
before it replies, the floor under figure 1's ratio.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypedDict

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table
from sqlmodel import Session
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ExtBot,
)
from telegram.request import HTTPXRequest

from bot.ratelimit import WindowedRateLimiter
from followup.settings import Settings

EchoApp = Application[Any, Any, Any, Any, Any, Any]
NEXT = "<b>Next question?</b> 0 = none, 4 = very much"
Store = Callable[[int, str], Awaitable[None]]  # (chat id, callback data)

# The floor's one row a press, in a table of its own: not part of the study's schema, so it has
# metadata of its own and no migration (create it with `PRESSES.create(engine)`).
PRESSES = Table(
    "bench_echo_press",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("chat_id", BigInteger, nullable=False),
    Column("data", String, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
_STORE = PRESSES.insert()  # built once, as the bot's own per-answer statements are


class Press(TypedDict):
    chat_id: int
    data: str
    at: dt.datetime


def store_presses(session: Session, presses: Sequence[Press]) -> None:
    """The cheapest write through the bot's unit of work: one prebuilt INSERT of every row."""
    session.execute(_STORE, list(presses))


def echo_bot(settings: Settings, token: str) -> ExtBot[Any]:
    """An ExtBot with bot/durable.py's arguments (tests/test_bench_smoke.py compares them)."""
    return ExtBot(
        token,
        base_url=settings.telegram_api_url,
        request=HTTPXRequest(connection_pool_size=128),
        get_updates_request=HTTPXRequest(connection_pool_size=2),
        rate_limiter=WindowedRateLimiter(overall_max_rate=settings.send_rate, max_retries=3),
    )


def wire_settings(bot: ExtBot[Any]) -> dict[str, object]:
    """What decides a bot's speed on the wire: pools, timeouts, rate limit and retries."""
    requests = bot._request  # python-telegram-bot has no public accessor for these
    kwargs = [getattr(r, "_client_kwargs", {}) for r in requests]
    limiter = bot.rate_limiter
    base = getattr(limiter, "_base_limiter", None)
    return {
        "base_url": bot.base_url,
        "pools": [k.get("limits") for k in kwargs],
        "timeouts": [k.get("timeout") for k in kwargs],
        "limiter": type(limiter).__name__,
        "max_rate": getattr(base, "max_rate", None),
        "retries": getattr(limiter, "retries", getattr(limiter, "_max_retries", None)),
    }


def next_question(step: int) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(str(n), callback_data=f"e:{step}:{n}") for n in range(5)]
    return InlineKeyboardMarkup([[b] for b in buttons])


def next_step(data: str) -> int:
    """The step of the question after the one a press (`e:<step>:<answer>`) answered."""
    return int(data.split(":")[1]) + 1


async def reply_to(query: CallbackQuery, bot: Any, chat_id: int, data: str) -> Message:
    """Answer the press, show the answer in the pressed message and ask the next question."""
    await query.answer()
    await query.edit_message_text(f"<b>Answered:</b> {data}", parse_mode=ParseMode.HTML)
    step = next_step(data)
    sent: Message = await bot.send_message(
        chat_id, NEXT, parse_mode=ParseMode.HTML, reply_markup=next_question(step)
    )
    return sent


async def echo_press(update: Update, context: Any) -> None:
    """Answer the press, show the answer in the pressed message and ask the next question."""
    query = update.callback_query
    if query is None or query.message is None or query.data is None:
        return
    await reply_to(query, context.bot, query.message.chat.id, query.data)


def stored_first(store: Store) -> Callable[[Update, Any], Coroutine[Any, Any, None]]:
    """`echo_press`, once `store` has kept the press."""

    async def press(update: Update, context: Any) -> None:
        query = update.callback_query
        if query is None or query.message is None or query.data is None:
            return
        await store(query.message.chat.id, query.data)
        await echo_press(update, context)

    return press


@asynccontextmanager
async def echo_running(
    settings: Settings, *, token: str, poll_timeout: float, concurrency: int,
    store: Store | None = None,
) -> AsyncIterator[EchoApp]:  # fmt: skip
    """Poll like bot/runtime.running does, with `concurrency` updates handled at once.
    `store`: keep each press before answering it (the floor, bench/conversation.measure_floor)."""
    application: EchoApp = (
        ApplicationBuilder().bot(echo_bot(settings, token)).concurrent_updates(concurrency).build()
    )
    handler = echo_press if store is None else stored_first(store)
    application.add_handler(CallbackQueryHandler(handler))
    async with polling(application, poll_timeout):
        yield application


@asynccontextmanager
async def polling(application: EchoApp, poll_timeout: float) -> AsyncIterator[None]:
    """Start `application` and poll as bot/runtime.running does; stop it on the way out."""
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(
        timeout=dt.timedelta(seconds=poll_timeout), drop_pending_updates=False
    )
    try:
        yield
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
