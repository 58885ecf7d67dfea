"""Linking a chat to a participant with a single-use invite, and the neutral reply to strangers."""

from __future__ import annotations

import datetime as dt
import logging

from sqlmodel import Session
from telegram import Update

from bot.deps import BotContext
from bot.replies import enqueue_text, reply_neutral, sender
from models.participants import (
    link_failures,
    participant_by_user,
    record_link_failure,
    redeem_invite,
)
from study.invites import is_throttled, looks_like_token

log = logging.getLogger(__name__)


async def start_link(update: Update, context: BotContext) -> None:
    """Link this chat to its participant by the invite token, then greet them."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    token = context.args[0] if context.args else ""
    settings, now = context.deps.settings, context.deps.now()
    window = dt.timedelta(minutes=settings.link_attempts_window_minutes)
    user_id, chat_id = user.id, chat.id

    def link(session: Session) -> list[int] | None:
        """The greeting's outbox id (none if a replay already queued it), or None: not linked."""
        participant = participant_by_user(session, user_id)
        if participant is None or token:
            failures = link_failures(session, telegram_user_id=user_id, since=now - window)
            throttled = is_throttled(
                failures, now=now, limit=settings.link_attempts_max, window=window
            )
            linked = None
            if not throttled and looks_like_token(token):
                linked = redeem_invite(
                    session, token=token, telegram_user_id=user_id, chat_id=chat_id, now=now
                )
            if linked is None:
                record_link_failure(session, telegram_user_id=user_id, now=now, keep=window)
                return None
            participant = linked
        log.info("participant %s greeted", participant.study_id)
        greeting = enqueue_text(
            session,
            participant=participant,
            purpose=f"greeting:{participant.study_id}:{update.update_id}",
            template="greeting",
            now=now,
        )
        return [greeting] if greeting is not None else []

    queued = await context.deps.db(link)
    if queued is None:
        await reply_neutral(update)
        return
    await sender(context).flush(queued or None)
