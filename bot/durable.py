"""Durable intake: record every update in the inbox before its offset is confirmed.

python-telegram-bot's Updater confirms an offset with the next getUpdates call, which can happen
before the handlers for the previous batch have run; a kill in between would lose updates the
participant saw delivered. Recording the batch inside getUpdates closes that gap, and the handled
mark makes a second delivery of the same update_id a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Update
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

from bot.deps import BotContext, Deps
from bot.groupcommit import GroupCommit
from bot.ratelimit import WindowedRateLimiter
from followup.logs import quiet_leaky_loggers
from followup.settings import Settings
from models import inbox

log = logging.getLogger(__name__)


def coordinator_chats(settings: Settings) -> frozenset[int]:
    """Chats whose messages (alert notices, replies to coordinators) go before participants'."""
    chat = settings.coordinator_chat_id
    return frozenset() if chat is None else frozenset({chat})


class DurableBot(ExtBot[Any]):
    """An ExtBot whose getUpdates stores each new update in the inbox before returning it."""

    __slots__ = ("_deps", "_handled", "_in_flight", "_recording")

    def __init__(self, deps: Deps, token: str) -> None:
        quiet_leaky_loggers()  # wherever a Bot is built: httpx would log the token in each URL
        self._deps = deps  # set before the base class freezes the object
        self._in_flight: set[int] = set()
        self._recording: set[asyncio.Future[set[int]]] = set()
        self._handled = GroupCommit(self._mark_all_handled)
        super().__init__(
            token,
            base_url=deps.settings.telegram_api_url,
            request=HTTPXRequest(connection_pool_size=128),
            get_updates_request=HTTPXRequest(connection_pool_size=2),
            # Stays under Telegram's ~30 messages/s; on a 429 it holds every request until
            # retry_after has passed, then retries, so nothing is sent inside the window.
            rate_limiter=WindowedRateLimiter(
                overall_max_rate=deps.settings.send_rate,
                max_retries=3,
                urgent_chats=coordinator_chats(deps.settings),
            ),
        )

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        return await self.accept(await super().get_updates(*args, **kwargs))

    async def accept(self, updates: tuple[Update, ...]) -> tuple[Update, ...]:
        """Record new updates durably; return those to handle (none already handled)."""
        fresh = [u for u in updates if u.update_id not in self._in_flight]
        if not fresh:
            return ()
        payloads = [u.to_dict() for u in fresh]
        now = self._deps.now()
        # Shielded and tracked: a poll cancelled by a stop still finishes its write, and the stop
        # waits for it before it looks for updates recorded but never queued (left_behind).
        write = asyncio.ensure_future(
            self._deps.db(lambda s: inbox.record(s, updates=payloads, now=now))
        )
        self._recording.add(write)
        write.add_done_callback(self._recording.discard)
        done = await asyncio.shield(write)
        if done:
            log.info("skipping %d update(s) already handled", len(done))
        accepted = tuple(u for u in fresh if u.update_id not in done)
        log.debug("recorded updates %s", [u.update_id for u in accepted])
        self._in_flight.update(u.update_id for u in accepted)
        return accepted

    async def replay_pending(self) -> list[Update]:
        """Updates recorded but never handled (the process died), to process again in order."""
        payloads = await self._deps.db(inbox.pending)
        updates = [Update.de_json(p, self) for p in payloads]
        self._in_flight.update(u.update_id for u in updates)
        return updates

    async def left_behind(self) -> list[Update]:
        """Updates recorded but never queued, once intake has stopped and the queue is drained.

        Stopping the Updater cancels the long poll, possibly after its batch was recorded, and
        then calls getUpdates once more to confirm the offset; updates that call returns are
        recorded here and dropped by the Updater. They would wait for the next start; a clean
        stop handles them now instead (runtime.running).
        """
        await asyncio.gather(*self._recording, return_exceptions=True)
        return await self.replay_pending()

    async def mark_handled(self, update_id: int) -> None:
        """Mark the update handled; returns once the mark is committed. Updates finishing while
        a mark is written share the next transaction (bot/groupcommit.py)."""
        await self._handled.add(update_id)
        self._in_flight.discard(update_id)

    async def _mark_all_handled(self, update_ids: list[int]) -> None:
        now = self._deps.now()
        await self._deps.db(lambda s: inbox.mark_all_done(s, update_ids=update_ids, now=now))


async def mark_handled(update: object, context: BotContext) -> None:
    """Runs after every other handler group: the update has had its effect."""
    if isinstance(update, Update) and isinstance(context.bot, DurableBot):
        await context.bot.mark_handled(update.update_id)
