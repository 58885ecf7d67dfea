"""Help, language and the reply to anything else a participant or a stranger writes."""

from __future__ import annotations

from telegram import Update

from bot.deps import BotContext
from bot.replies import current_participant, reply_neutral, reply_to_participant
from messages.render import LANGUAGES, render
from models.participants import set_language


async def show_help(update: Update, context: BotContext) -> None:
    """Explain what this chat does, in the participant's language."""
    participant = await current_participant(update, context)
    if participant is None:
        await reply_neutral(update)
        return
    contact = context.deps.settings.team_contact
    await reply_to_participant(update, context, participant, "help", team_contact=contact)


async def switch_language(update: Update, context: BotContext) -> None:
    """Switch the participant between Chinese and English."""
    participant = await current_participant(update, context)
    if participant is None:
        await reply_neutral(update)
        return
    others = [lang for lang in LANGUAGES if lang != participant.language]
    language = others[0]
    now = context.deps.now()
    await context.deps.db(
        lambda s: set_language(s, participant=participant, language=language, now=now)
    )
    participant.language = language
    await reply_to_participant(update, context, participant, "language_switched")


async def answer_anything_else(update: Update, context: BotContext) -> None:
    """Reply to any other message: a short note for participants, the neutral text otherwise."""
    participant = await current_participant(update, context)
    if participant is None:
        await reply_neutral(update)
        return
    await reply_to_participant(update, context, participant, "fallback")


async def answer_stale_button(update: Update, context: BotContext) -> None:
    """Answer a button press that no longer means anything, changing nothing."""
    query = update.callback_query
    if query is None:
        return
    participant = await current_participant(update, context)
    language = participant.language if participant else "zh"
    await query.answer(render("stale_button", language))
