"""Build the Application: every handler registered here, in one place, in order."""

from __future__ import annotations

import logging
from typing import Any, cast

from telegram import BotCommand, Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import alerting, checkin, coordinator, enrolment, general, schedule, withdrawal
from bot.deps import BotApp, BotContext, Deps
from bot.durable import DurableBot, mark_handled
from bot.processor import PerChatUpdateProcessor
from bot.sender import OutboxSender
from followup.logs import quiet_leaky_loggers
from messages import alert_rules, instruments
from messages.phrases import emergency_phrases
from messages.render import LANGUAGES, bot_commands

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
TYPED = filters.TEXT & ~filters.COMMAND
CHECKIN = r"^(ci|checkin):"  # every check-in button; bot/keyboards.py checks the rest
HANDLED_GROUP = 1000


def build_application(deps: Deps, *, token: str) -> BotApp:
    """Compose the bot: settings, typed context, per-chat ordering, rate limits and handlers."""
    quiet_leaky_loggers()
    application = cast(
        BotApp,
        ApplicationBuilder()
        .bot(DurableBot(deps, token))
        .context_types(ContextTypes(context=BotContext))
        .concurrent_updates(PerChatUpdateProcessor(64))
        .build(),
    )
    application.bot_data["deps"] = deps
    _add_handlers(application)
    return application


def _add_handlers(application: BotApp) -> None:
    # First: a participant Telegram refused who writes again is reachable again (issue 3).
    application.add_handler(TypeHandler(Update, schedule.resume_unreachable), group=-1)
    # Before that: someone who left chat contact gets one fixed reply and nothing else (issue 6).
    application.add_handler(TypeHandler(Update, withdrawal.screen_after_withdrawal), group=-2)
    # Before everything: an emergency phrase in any message gets the emergency text (issue 5).
    application.add_handler(TypeHandler(Update, alerting.catch_emergency), group=-3)
    application.add_handler(CommandHandler("start", enrolment.start_link, filters=PRIVATE))
    application.add_handler(CommandHandler("next", schedule.show_next_visit, filters=PRIVATE))
    application.add_handler(CommandHandler("help", general.show_help, filters=PRIVATE))
    application.add_handler(CommandHandler("language", general.switch_language, filters=PRIVATE))
    application.add_handler(
        CommandHandler("withdraw", withdrawal.offer_withdrawal, filters=PRIVATE)
    )
    application.add_handler(CommandHandler("privacy", withdrawal.show_privacy, filters=PRIVATE))
    application.add_handler(
        MessageHandler(PRIVATE & withdrawal.STOP_WORDS, withdrawal.offer_withdrawal)
    )
    application.add_handler(
        CallbackQueryHandler(withdrawal.press_withdrawal_button, pattern=withdrawal.PATTERN)
    )
    for handler in coordinator.handlers(application.bot_data["deps"]):  # allow-listed only
        application.add_handler(handler)
    application.add_handler(CallbackQueryHandler(checkin.press_checkin_button, pattern=CHECKIN))
    application.add_handler(MessageHandler(PRIVATE & TYPED, checkin.answer_text))
    application.add_handler(MessageHandler(PRIVATE & ~filters.TEXT, checkin.answer_other_media))
    application.add_handler(CallbackQueryHandler(general.answer_stale_button))
    application.add_handler(MessageHandler(PRIVATE, general.answer_anything_else))
    # After the handlers: deliver the notices of any alert they raised (issue 5).
    notices = TypeHandler(Update, alerting.send_alert_notices)
    application.add_handler(notices, group=HANDLED_GROUP - 1)
    # Last group: runs for every update once the handlers above have had their effect.
    application.add_handler(TypeHandler(Update, mark_handled), group=HANDLED_GROUP)
    application.add_error_handler(_log_error)


async def prepare(application: Any) -> None:
    """Create the outbox sender and publish the command menu in both languages."""
    deps = application.bot_data["deps"]
    concurrency = deps.settings.send_concurrency
    application.bot_data["sender"] = OutboxSender(application.bot, deps, concurrency=concurrency)
    warm_texts()
    for language, commands in bot_commands().items():
        menu = [BotCommand(name, description) for name, description in commands]
        await application.bot.set_my_commands(menu, language_code=language)
    default = bot_commands()["zh"]
    await application.bot.set_my_commands([BotCommand(n, d) for n, d in default])


def warm_texts() -> None:
    """Read the alert rules, phrases and questionnaire texts now, not in the first RED answer.

    They are YAML files parsed once per process (about half a second together); parsed lazily,
    the first alert after a start paid for it while the coordinators waited.
    """
    alert_rules.current()
    emergency_phrases()
    questionnaire = instruments.latest()
    for language in LANGUAGES:
        instruments.texts(questionnaire.version, language, questionnaire.instrument)


async def _log_error(update: object, context: BotContext) -> None:
    """Log the failure by kind and update id only: an update carries health data and names."""
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    log.error(
        "handler failed for update %s: %s",
        update_id,
        type(error).__name__,
        exc_info=(type(error), error, error.__traceback__) if error else None,
    )
