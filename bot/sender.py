"""Deliver the outbox through Telegram and record each outcome in the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlmodel import Session
from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.deps import Deps
from bot.groupcommit import GroupCommit
from messages.render import render
from models import outbox
from models.reach import mark_unreachable
from models.tables import OutboxMessage

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(minutes=10)
# A periodic flush claims and hands over at once what the rate limiter lets out in this long.
HAND_OVER_AHEAD_SECONDS = 0.5
# ...and records its sends together, each within this long of going out.
RECORD_LINGER_SECONDS = 0.1


def backoff(failures: int) -> dt.timedelta:
    """5 s, 10 s, 20 s … up to ten minutes between retries after a 5xx or a timeout.

    `failures` counts the message's failed attempts before this one. Claims are not counted: a
    message re-claimed after restarts must not wait ten minutes after its first timeout.
    """
    return min(MAX_BACKOFF, dt.timedelta(seconds=5 * 2 ** max(0, failures)))


class OutboxSender:
    """Claims due outbox rows, sends them, and marks them sent, retried or failed.

    One chat's messages go out in order; different chats go out `concurrency` at a time
    (settings.send_concurrency), paced by the Bot's rate limiter under Telegram's limits. After a
    429 that the limiter could not absorb, the whole sender pauses for `retry_after`, so nothing
    is sent inside that window. A row this sender holds is never claimed again by it, however
    long the limiter keeps it waiting (models.outbox.claim's `in_hand`).
    """

    def __init__(self, bot: Bot, deps: Deps, *, concurrency: int = 1) -> None:
        self.bot = bot
        self.deps = deps
        self.concurrency = concurrency
        self.ahead_seconds = HAND_OVER_AHEAD_SECONDS  # see `window`
        self.record_linger = RECORD_LINGER_SECONDS  # see `_flush_due`
        self._resume_at = 0.0  # `monotonic()` time before which nothing is sent
        # Where the pause after a 429 is measured: the event loop's clock, or a test's.
        self.monotonic: Callable[[], float] = lambda: asyncio.get_running_loop().time()
        self._flushing = 0
        self._in_hand: set[int] = set()  # claimed by this sender and not yet settled
        # Sends that finish while one is being marked share the next transaction.
        self._sent = GroupCommit(self._mark_all_sent)
        self._settled = asyncio.Event()
        self._settled.set()

    def pause_left(self) -> float:
        """Seconds left of the pause after a 429, or 0."""
        return max(0.0, self._resume_at - self.monotonic())

    async def flush(self, ids: Sequence[int] | None = None, *, limit: int = 100) -> int:
        """Send what is due (only `ids`, when given); return how many went out.

        Each claim is also the hand-over (`outbox.claim`): the last check,
        under the participant's lock, that a withdrawal has not committed meanwhile. So a claim
        takes only what the rate limiter lets out in about HAND_OVER_AHEAD_SECONDS
        (`window`): a withdrawal that finds one of its participant's messages handed over
        waits for it to be sent (`models.consent.with_sends_settled`, at most 4 s), and it
        should wait for a fraction of a second, not for a whole batch queued behind the limiter.
        """
        with self._flush():
            if ids is not None:
                batch = await self.deps.db(self._claim(self.deps.now(), ids, limit))
                return await self._deliver_held(batch)
            return await self._flush_due(self.window(limit))

    async def _flush_due(self, limit: int) -> int:
        """The periodic flush: claim a window, send it, claim the next; one transaction a claim.

        Sends are recorded in the background, together, within RECORD_LINGER_SECONDS of each
        (`_Records`), so no send waits for a transaction and a crash repeats only what went out
        in that last moment, as with one record per send.
        """
        sent = 0
        records = _Records(self._record, self.record_linger)
        try:
            while not self.pause_left():
                batch = await self.deps.db(self._claim(self.deps.now(), None, limit))
                claimed = {m.id for m in batch if m.id is not None}
                self._in_hand |= claimed  # until their outcomes are recorded
                try:
                    sent += await self._deliver_batch(batch, records.add)
                finally:
                    self._in_hand -= claimed - records.waiting()
                if not batch:  # sending can queue more (a 403's alert): claim until none
                    break
        finally:
            await records.close()
        return sent

    async def _record(self, sent: list[tuple[int, int]]) -> None:
        try:
            await self._mark_all_sent(sent)
        finally:
            self._in_hand -= {message_id for message_id, _ in sent}

    def window(self, limit: int) -> int:
        """How many rows one claim hands over: what the limiter sends in HAND_OVER_AHEAD_SECONDS,
        at least one for each chat served at once, at most `limit`.

        At 29/s that is 14; with the limits off (the fan-out benchmark) a whole batch of 100, in
        one transaction instead of one for each few messages.
        """
        ahead = int(self.deps.settings.send_rate * self.ahead_seconds)
        return min(limit, max(self.concurrency, ahead))

    async def send_claimed(self, batch: Sequence[OutboxMessage]) -> int:
        """Send rows a handler claimed and handed over in its own transaction
        (`outbox.hand_over_queued`), which saves the claim's transaction on every reply. The
        handler holds them (`holding`) from the moment its transaction returns."""
        with self._flush():
            return await self._deliver_held(batch)

    @contextmanager
    def holding(self, batch: Sequence[OutboxMessage]) -> Iterator[None]:
        """Count rows a handler claimed as this sender's own until the block ends.

        Between its transaction and `send_claimed` a handler answers the callback and edits the
        pressed message, which can wait in the rate limiter for longer than the lease; rows
        not held meanwhile were claimed again by the periodic flush and sent twice (the chaos
        test found it). Held, they are never claimed again by this process, as in `flush`.
        """
        claimed = {m.id for m in batch if m.id is not None}
        self._in_hand |= claimed
        try:
            with self._flush():
                yield
        finally:
            self._in_hand -= claimed

    @contextmanager
    def _flush(self) -> Iterator[None]:
        self._flushing += 1
        self._settled.clear()
        try:
            yield
        finally:
            self._flushing -= 1
            if not self._flushing:
                self._settled.set()

    async def _deliver_held(self, batch: Sequence[OutboxMessage]) -> int:
        """Send `batch`, each send recorded at once (group-committed with others under way)."""
        claimed = {m.id for m in batch if m.id is not None}
        self._in_hand |= claimed
        try:
            return await self._deliver_batch(batch, None)
        finally:
            self._in_hand -= claimed

    async def settled(self) -> None:
        """Return once no flush is under way: every send handed over has its outcome recorded."""
        await self._settled.wait()

    async def _deliver_batch(
        self, batch: Sequence[OutboxMessage], record: Callable[[tuple[int, int]], None] | None
    ) -> int:
        """Send `batch`, chats `concurrency` at a time; a send is recorded at once, or, given
        `record`, handed to it (message id, Telegram's message id) to record."""
        by_chat: dict[int, list[OutboxMessage]] = {}
        for message in batch:
            by_chat.setdefault(message.chat_id, []).append(message)
        # `concurrency` lanes, each taking the next chat's messages until none is left: a task
        # per chat behind a semaphore made a task, a wait and a wake-up for every chat, which
        # cost about a sixth of the rate in the fan-out benchmark (docs/benchmarks.md).
        chats = deque(by_chat.values())

        async def lane() -> int:
            sent = 0
            while chats:
                for message in chats.popleft():
                    if self.pause_left():
                        await self._put_back(message)
                    else:
                        sent += await self._deliver(message, record)
            return sent

        lanes = min(self.concurrency, len(chats))
        if lanes == 1:  # one chat (a handler's reply) or one lane: no tasks to gather
            return await lane()
        return sum(await asyncio.gather(*(lane() for _ in range(lanes))))

    async def _put_back(self, message: OutboxMessage) -> None:
        """Return a claimed row unsent, due again when the pause ends."""
        assert message.id is not None
        await self._retry(message.id, dt.timedelta(seconds=self.pause_left()), "paused")

    def _claim(
        self, now: dt.datetime, ids: Sequence[int] | None, limit: int
    ) -> Callable[[Session], list[OutboxMessage]]:
        lease = dt.timedelta(seconds=self.deps.settings.send_lease_seconds)
        in_hand = frozenset(self._in_hand)
        return lambda session: outbox.claim(
            session, now=now, ids=ids, limit=limit, lease=lease, in_hand=in_hand
        )

    async def _deliver(
        self, message: OutboxMessage, record: Callable[[tuple[int, int]], None] | None = None
    ) -> int:
        assert message.id is not None
        message_id = message.id
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
            log.warning("outbox %s: 429, pausing all sends for %.0f s", message.purpose, seconds)
            self._resume_at = max(self._resume_at, self.monotonic() + seconds)
            await self._retry(message_id, dt.timedelta(seconds=seconds), "429")
            return 0
        except (Forbidden, BadRequest) as exc:
            if message.participant_id is None:  # a coordinator chat: an alert is never dropped
                log.error("outbox %s to the coordinator chat refused (%s), retrying",
                          message.purpose, type(exc).__name__)  # fmt: skip
                await self._failed(message_id, message.attempts, type(exc).__name__)
                return 0
            if isinstance(exc, Forbidden):
                log.warning("outbox %s refused by Telegram (403)", message.purpose)
                await self.deps.db(self._refused(message_id, message.participant_id))
                return 0
            log.error(
                "outbox %s rejected as a bad request: %s", message.purpose, type(exc).__name__
            )
            await self.deps.db(lambda s: outbox.mark_failed(s, message_id=message_id, error="400"))
            return 0
        except (NetworkError, TelegramError) as exc:  # TimedOut, 5xx and anything unforeseen
            log.warning("outbox %s: %s, retrying", message.purpose, type(exc).__name__)
            await self._failed(message_id, message.attempts, type(exc).__name__)
            return 0
        if record is not None:
            record((message_id, result.message_id))
        else:
            await self._sent.add((message_id, result.message_id))
        return 1

    async def _mark_all_sent(self, sent: list[tuple[int, int]]) -> None:
        now = self.deps.now()
        await self.deps.db(lambda s: outbox.mark_all_sent(s, sent=sent, now=now))

    async def _retry(self, message_id: int, delay: dt.timedelta, error: str) -> None:
        at = self.deps.now() + delay
        await self.deps.db(
            lambda s: outbox.mark_retry(s, message_id=message_id, at=at, error=error)
        )

    async def _failed(self, message_id: int, failures: int, error: str) -> None:
        """A failed attempt: retry after a back-off that grows with each failure."""
        at = self.deps.now() + backoff(failures)
        await self.deps.db(
            lambda s: outbox.mark_retry(s, message_id=message_id, at=at, error=error, failed=True)
        )

    def _refused(self, message_id: int, participant_id: int | None) -> Callable[[Session], None]:
        """A 403: fail the row and, for a participant, stop writing and ask for a phone call."""
        settings, now = self.deps.settings, self.deps.now()

        def notice(study_id: str) -> str:
            return render("alert_unreachable", settings.coordinator_language, study_id=study_id)

        def record(session: Session) -> None:
            outbox.mark_failed(session, message_id=message_id, error="403")
            if participant_id is None:
                log.error("outbox message %s to a coordinator chat was refused (403)", message_id)
                return
            chat = settings.coordinator_chat_id
            mark_unreachable(
                session, participant_id=participant_id, now=now, notify_chat_id=chat,
                notice=notice, language=settings.coordinator_language,
            )  # fmt: skip

        return record


class _Records:
    """The sends of one periodic flush, recorded in the background, together.

    The first send starts a timer of `linger` seconds; every send that finishes before it fires
    shares the transaction it starts, and no send waits for it. One write at a time, in order.
    (`GroupCommit` makes each caller wait for its own commit, which is right for a handler's
    reply but would hold a chat's turn for a whole transaction after every prompt.)
    """

    def __init__(self, write: Callable[[list[tuple[int, int]]], Awaitable[None]],
                 linger: float) -> None:  # fmt: skip
        self._write = write
        self._linger = linger
        self._pending: list[tuple[int, int]] = []
        self._unrecorded: set[int] = set()  # pending, or in a write not yet committed
        self._timer: asyncio.TimerHandle | None = None
        self._turn = asyncio.Lock()
        self._writes: set[asyncio.Task[None]] = set()

    def add(self, sent: tuple[int, int]) -> None:
        self._pending.append(sent)
        self._unrecorded.add(sent[0])
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._start)

    def waiting(self) -> set[int]:
        """Message ids sent and not yet recorded."""
        return set(self._unrecorded)

    def _start(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._write_pending())
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The rows stay SENDING until their lease runs out, then go again: as after a crash.
            log.error("recording sent messages failed: %s", type(task.exception()).__name__)

    async def _write_pending(self) -> None:
        async with self._turn:
            batch, self._pending = self._pending, []
            try:
                if batch:
                    await self._write(batch)
            finally:
                self._unrecorded -= {message_id for message_id, _ in batch}

    async def close(self) -> None:
        """Record everything sent: wait for the writes under way, then write the rest now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.gather(*self._writes, return_exceptions=True)
        await self._write_pending()
