"""Escalation in the chat: emergency phrases in any message, and prompt coordinator notices.

`catch_emergency` runs before every other handler (and does not stop them): a message with an
emergency phrase gets the fixed emergency text at once and raises a RED alert, whether or not a
check-in is open. A handler that can raise an alert runs its work `with_notices`: the alert's
coordinator notice is queued in the same transaction and delivered before anything else the
update sends (a RED notice is more urgent than the participant's next question).
`send_alert_notices` runs after the handlers as a net: any alert raised without its notice is
queued for the coordinator chat and delivered before the update is marked handled.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlmodel import Session
from telegram import Update

from bot.deps import BotContext, Deps, urgent
from bot.replies import sender
from messages.phrases import emergency_phrases
from models import escalation
from models.participants import participant_by_user
from models.tables import ParticipantStatus
from study.emergency import mentions_emergency

log = logging.getLogger(__name__)
T = TypeVar("T")


def renotify_interval(deps: Deps) -> dt.timedelta:
    return dt.timedelta(minutes=deps.settings.alert_renotify_minutes)


async def catch_emergency(update: Update, context: BotContext) -> None:
    """An emergency phrase from a linked participant: the emergency text and a RED alert."""
    # Only what the person wrote: a button press carries the bot's own question text.
    message, user, chat = update.message, update.effective_user, update.effective_chat
    if message is None or user is None or chat is None or chat.type != chat.PRIVATE:
        return
    text = message.text or message.caption
    if not text or not mentions_emergency(text, emergency_phrases()):
        return  # the common case decided without touching the database
    user_id, update_id, now = user.id, update.update_id, context.deps.now()

    def work(session: Session) -> list[int] | None:
        participant = participant_by_user(session, user_id)
        if participant is None:
            return None
        # Someone who left chat contact gets the emergency text from the withdrawal screen.
        left = participant.status == ParticipantStatus.WITHDRAWN or not participant.chat_contact
        return escalation.on_message(session, participant=participant, text=text,
                                     update_id=update_id, now=now, send_text=not left)  # fmt: skip

    with urgent():  # most messages hold no emergency phrase, and those return before this
        ids, notices = await context.deps.db(with_notices(context.deps, work))
    await deliver_notices(context, notices)
    if ids is not None:
        log.info("emergency phrase in update %s", update_id)
        if ids:
            await sender(context).flush(ids)


def with_notices(
    deps: Deps, work: Callable[[Session], T]
) -> Callable[[Session], tuple[T, list[int]]]:
    """`work`, then, in the same transaction, the notices of any alert it raised.

    Returns what `work` returned and the outbox ids of those notices, to deliver first.
    """

    def run(session: Session) -> tuple[T, list[int]]:
        result = work(session)
        if not escalation.raised_in(session):
            return result, []
        notices = queue_due_notices(session, deps)
        escalation.noticed_in(session)
        return result, notices

    return run


async def deliver_notices(context: BotContext, notices: Sequence[int]) -> None:
    """Send the coordinator notices an update queued, ahead of its other messages."""
    if notices:
        with urgent():
            await sender(context).flush(notices)


_seen: dict[int, int] = {}  # id(Deps) -> escalation.raised_count() when last looked


async def send_alert_notices(update: Update, context: BotContext) -> None:
    """Queue and deliver the notices of alerts this process raised since it last looked.

    Re-notices, and alerts raised by another process, are the dispatch pass's job; skipping the
    query when nothing was raised keeps a transaction off every update.
    """
    deps, raised = context.deps, escalation.raised_count()
    if _seen.get(id(deps)) == raised:
        return
    _seen[id(deps)] = raised
    ids = await deps.db(lambda s: queue_due_notices(s, deps))
    if ids:
        await sender(context).flush(ids)


def queue_due_notices(session: Session, deps: Deps) -> list[int]:
    settings = deps.settings
    return escalation.queue_notices(
        session, now=deps.now(), chat_id=settings.coordinator_chat_id,
        language=settings.coordinator_language, interval=renotify_interval(deps),
    )  # fmt: skip
