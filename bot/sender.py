"""Deliver the outbox through Telegram and record each outcome in the database."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence

from sqlmodel import Session
from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.deps import Deps
from models import outbox
from models.tables import OutboxMessage

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(minutes=10)


def backoff(attempts: int) -> dt.timedelta:
    """5 s, 10 s, 20 s … up to ten minutes between retries after a 5xx or a timeout."""
    return min(MAX_BACKOFF, dt.timedelta(seconds=5 * 2 ** max(0, attempts - 1)))


class OutboxSender:
    """Claims due outbox rows, sends them, and marks them sent, retried or failed."""

    def __init__(self, bot: Bot, deps: Deps) -> None:
        self.bot = bot
        self.deps = deps

    async def flush(self, ids: Sequence[int] | None = None, *, limit: int = 100) -> int:
        """Send what is due (only `ids`, when given); return how many went out."""
        sent = 0
        while True:
            batch = await self.deps.db(self._claim(self.deps.now(), ids, limit))
            for message in batch:
                sent += await self._deliver(message)
            if ids is not None or len(batch) < limit:
                return sent

    @staticmethod
    def _claim(
        now: dt.datetime, ids: Sequence[int] | None, limit: int
    ) -> Callable[[Session], list[OutboxMessage]]:
        return lambda session: outbox.claim(session, now=now, ids=ids, limit=limit)

    async def _deliver(self, message: OutboxMessage) -> int:
        assert message.id is not None
        message_id, now = message.id, self.deps.now()
        # The last check before Telegram, under the participant's lock (models.outbox).
        if not await self.deps.db(lambda s: outbox.hand_over(s, message_id=message_id, now=now)):
            return 0
        markup = (
            InlineKeyboardMarkup.de_json(json.loads(message.reply_markup), self.bot)
            if message.reply_markup
            else None
        )
        try:
            result = await self.bot.send_message(
                message.chat_id, message.text, parse_mode=ParseMode.HTML, reply_markup=markup
            )
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, dt.timedelta) else float(wait)
            await self._retry(message_id, dt.timedelta(seconds=seconds), "429")
            return 0
        except Forbidden:
            log.warning("outbox %s refused by Telegram (403)", message.purpose)
            await self.deps.db(lambda s: outbox.mark_failed(s, message_id=message_id, error="403"))
            return 0
        except BadRequest as exc:
            log.error(
                "outbox %s rejected as a bad request: %s", message.purpose, type(exc).__name__
            )
            await self.deps.db(lambda s: outbox.mark_failed(s, message_id=message_id, error="400"))
            return 0
        except NetworkError as exc:  # includes TimedOut and 5xx answers
            await self._retry(message_id, backoff(message.attempts), type(exc).__name__)
            return 0
        now = self.deps.now()
        await self.deps.db(
            lambda s: outbox.mark_sent(
                s, message_id=message_id, telegram_message_id=result.message_id, now=now
            )
        )
        return 1

    async def _retry(self, message_id: int, delay: dt.timedelta, error: str) -> None:
        at = self.deps.now() + delay
        await self.deps.db(
            lambda s: outbox.mark_retry(s, message_id=message_id, at=at, error=error)
        )
