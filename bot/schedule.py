"""The schedule in the chat: /next, and resuming a participant who writes after a refused send."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session
from telegram import Update

from bot.deps import BotContext
from bot.replies import (
    current_participant,
    enqueue_text,
    passes_screens,
    reply_neutral,
    screened_participant,
    sender,
)
from models.reach import mark_reachable
from models.tables import Participant, VisitStatus
from models.visits import next_visit
from scheduler.dispatch import checkin_button, months_since_enrolment

log = logging.getLogger(__name__)


async def show_next_visit(update: Update, context: BotContext) -> None:
    """Tell the participant when their next check-in is, with its button if it is open now."""
    participant = await current_participant(update, context)
    if participant is None:
        await reply_neutral(update)
        return
    now = context.deps.now()

    def answer(session: Session) -> int | None:
        assert participant.id is not None
        visit = next_visit(session, participant.id)
        state, markup, params = "none", None, dict[str, Any]()
        if visit is not None and visit.id is not None:
            state = "open" if visit.status == VisitStatus.OPEN else "planned"
            params = {"date": visit.due_date,
                      "months": months_since_enrolment(participant, visit.due_date)}  # fmt: skip
            if state == "open":
                markup = checkin_button(visit.id, participant.language)
        return enqueue_text(
            session, participant=participant, purpose=f"reply:{update.update_id}:next_visit",
            template="next_visit", now=now, markup=markup, state=state, **params,
        )  # fmt: skip

    message_id = await context.deps.db(answer)
    await sender(context).flush([message_id] if message_id is not None else [])


async def resume_unreachable(update: Update, context: BotContext) -> None:
    """A participant Telegram refused has written again: clear the flag before anything else.

    A check-in answer's turn clears it itself, under the participant's lock (`passes_screens`).
    """
    user = update.effective_user
    if user is None or passes_screens(update):
        return
    participant: Participant | None = await screened_participant(update, context)
    if participant is None or not participant.unreachable:
        return
    assert participant.id is not None
    participant_id, now = participant.id, context.deps.now()
    await context.deps.db(lambda s: mark_reachable(s, participant_id=participant_id, now=now))
