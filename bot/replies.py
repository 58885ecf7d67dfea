"""Reply helpers shared by the handlers: the current participant, and replies via the outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session
from telegram import Update
from telegram.constants import ParseMode

from bot.deps import BotContext
from bot.keyboards import CheckinButton
from bot.sender import OutboxSender
from messages.render import render, render_bilingual
from models import outbox
from models.participants import participant_by_user
from models.tables import Participant


async def current_participant(update: Update, context: BotContext) -> Participant | None:
    """The linked participant who sent this update, or None for anyone else."""
    user = update.effective_user
    if user is None:
        return None
    user_id = user.id
    return await context.deps.read(lambda s: participant_by_user(s, user_id))


_SCREENED = "followup_screened_participant"


async def screened_participant(update: Update, context: BotContext) -> Participant | None:
    """`current_participant`, read once per update for the screens that run before every
    handler (withdrawal, then unreachable), which ask the same question within a moment; a
    check-in answer press passes them unread (`passes_screens`).

    python-telegram-bot builds one context per update and hands it to every group. A
    withdrawal committed between the two screens is still caught: every handler that acts
    re-checks the participant in its own transaction.
    """
    if _SCREENED not in context.__dict__:
        context.__dict__[_SCREENED] = await current_participant(update, context)
    found = context.__dict__[_SCREENED]
    assert found is None or isinstance(found, Participant)
    return found


def passes_screens(update: Update) -> bool:
    """A check-in answer button pressed in a private chat: both screens let it through unread.

    Its turn (`bot.checkin_flow.press_answer`) locks the participant anyway and, under that
    lock, answers anyone who may not answer with the same stale notice the withdrawal screen
    gives, and marks an unreachable presser reachable as `resume_unreachable` would. The
    screens' read, unlocked and so the weaker check, cost about 4% of the bot's throughput.
    Only a private chat: elsewhere the withdrawal screen never stopped anyone, so the turn's
    rule for who becomes reachable would not match the screens'.
    """
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None or chat.type != chat.PRIVATE:
        return False
    return CheckinButton.parse(query.data) is not None


async def reply_neutral(update: Update) -> None:
    """The one reply for everyone who is not a linked participant: it reveals nothing."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(
            render_bilingual("neutral"), parse_mode=ParseMode.HTML
        )


def enqueue_text(
    session: Session,
    *,
    participant: Participant,
    purpose: str,
    template: str,
    now: Any,
    markup: dict[str, Any] | None = None,
    hand_over: dt.timedelta | None = None,
    **params: Any,
) -> int | None:
    """Render a template in the participant's language and put it in the outbox (`hand_over`:
    as `outbox.enqueue` takes it)."""
    assert participant.telegram_chat_id is not None
    return outbox.enqueue(
        session,
        purpose=purpose,
        chat_id=participant.telegram_chat_id,
        participant_id=participant.id,
        text=render(template, participant.language, **params),
        reply_markup=markup,
        now=now,
        hand_over=hand_over,
    )


async def reply_to_participant(
    update: Update, context: BotContext, participant: Participant, template: str, **params: Any
) -> None:
    """Answer this update through the outbox; a replayed update cannot answer twice."""
    now = context.deps.now()
    purpose = f"reply:{update.update_id}:{template}"
    message_id = await context.deps.db(
        lambda s: enqueue_text(
            s, participant=participant, purpose=purpose, template=template, now=now, **params
        )
    )
    await sender(context).flush([message_id] if message_id is not None else [])


def sender(owner: BotContext | Any) -> OutboxSender:
    """The application's outbox sender, from a handler's context or the application itself."""
    found = owner.bot_data["sender"]
    assert isinstance(found, OutboxSender)
    return found
