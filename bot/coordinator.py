"""The coordinators' side: alert buttons, the resolve note by reply, /alerts, /due, /participant.

Only user ids in FOLLOWUP_COORDINATOR_IDS may act; anyone else gets the neutral reply (or a
silent answer to a press) and nothing changes. Who pressed is audited as `coordinator:<user id>`.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session
from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.deps import BotContext, Deps
from bot.replies import reply_neutral, sender
from messages.alert_wording import ACK, ANSWERS, PATTERN, RESOLVE, alert_markup, notice_text
from messages.render import render
from models import alert_actions, outbox
from models.coordinator_views import alert_rows, timeline, visit_rows
from models.escalation import notice_context
from models.participants import participant_by_study_id

log = logging.getLogger(__name__)
_DATA = re.compile(r"^al:v1:([ars]):([0-9]{1,12})$")


class _FromCoordinator(filters.MessageFilter):
    """A message from a user on the allow-list (read from the settings at each update)."""

    def __init__(self, deps: Deps) -> None:
        super().__init__(name="from_coordinator")
        self.deps = deps

    def filter(self, message: Any) -> bool:
        user = message.from_user
        return user is not None and user.id in self.deps.settings.coordinator_ids


def _allowed(update: Update, context: BotContext) -> bool:
    user = update.effective_user
    return user is not None and user.id in context.deps.settings.coordinator_ids


def _actor(update: Update) -> str:
    assert update.effective_user is not None
    return f"coordinator:{update.effective_user.id}"


async def _edit_notices(context: BotContext, alert_id: int) -> None:
    """Show the alert's new state in every notice of it that was delivered."""
    language = context.deps.settings.coordinator_language

    def load(session: Session) -> tuple[str, dict[str, Any], list[tuple[int, int]]]:
        alert = alert_actions.alert_by_id(session, alert_id)
        assert alert is not None
        text = notice_text(language, **notice_context(session, alert))
        return (
            text,
            alert_markup(alert, language),
            alert_actions.notice_messages(session, alert_id),
        )

    text, markup, messages = await context.deps.db(load)
    keyboard = InlineKeyboardMarkup.de_json(markup, context.bot)
    for chat_id, message_id in messages:
        try:
            await context.bot.edit_message_text(
                text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard,
            )
        except BadRequest as exc:  # too old to edit, or unchanged: the state is in the rows
            log.warning("alert %s: could not edit a notice: %s", alert_id, type(exc).__name__)


async def press_alert_button(update: Update, context: BotContext) -> None:
    """Acknowledge, ask for a resolve note, or show the answers; allow-listed users only."""
    query = update.callback_query
    assert query is not None
    found = _DATA.match(query.data or "")
    if not _allowed(update, context) or found is None or query.message is None:
        await query.answer()
        return
    code, alert_id = found.group(1), int(found.group(2))
    deps, language, chat_id = (
        context.deps,
        context.deps.settings.coordinator_language,
        query.message.chat.id,
    )
    now, by, update_id = deps.now(), _actor(update), update.update_id
    if code == ACK:
        handled = await deps.db(lambda s: alert_actions.acknowledge(s, alert_id=alert_id, by=by,
                                                                  now=now))  # fmt: skip
        outcome = "unknown" if handled.alert is None else (
            "acknowledged" if handled.changed else "already")  # fmt: skip
        await query.answer(render("alert_pressed", language, outcome=outcome))
        if handled.changed:
            await _edit_notices(context, alert_id)
        return

    def enqueue(session: Session) -> tuple[str, int | None]:
        alert = alert_actions.alert_by_id(session, alert_id)
        if alert is None:
            return "unknown", None
        context_ = notice_context(session, alert)
        if code == RESOLVE:
            if alert.status == "resolved":
                return "already", None
            text = render("alert_note_ask", language, alert_id=alert_id,
                          study_id=context_["study_id"])  # fmt: skip
            purpose, outcome = f"alert:{alert_id}:note:{update_id}", "note"
        else:
            lines = alert_actions.answer_lines(session, alert, language)
            text = render("alert_answers", language, alert_id=alert_id, lines=lines,
                          study_id=context_["study_id"], visit=context_["visit"])  # fmt: skip
            purpose, outcome = f"alert:{alert_id}:answers:{update_id}", ""
        return outcome, outbox.enqueue(session, purpose=purpose, chat_id=chat_id, text=text,
                                       now=now)  # fmt: skip

    outcome, message_id = await deps.db(enqueue)
    await query.answer(render("alert_pressed", language, outcome=outcome) if outcome else None)
    if message_id is not None:
        await sender(context).flush([message_id])


async def take_resolve_note(update: Update, context: BotContext) -> None:
    """A coordinator's reply to a "reply with a note" message resolves that alert."""
    message = update.effective_message
    assert message is not None and message.reply_to_message is not None
    deps, language = context.deps, context.deps.settings.coordinator_language
    chat_id, replied = message.chat.id, message.reply_to_message.message_id
    note, now, by = message.text or "", deps.now(), _actor(update)

    def work(session: Session) -> alert_actions.Handled | None:
        alert_id = alert_actions.alert_of_note_request(session, chat_id=chat_id,
                                                       message_id=replied)  # fmt: skip
        if alert_id is None:
            return None
        return alert_actions.resolve(session, alert_id=alert_id, by=by, note=note, now=now)

    handled = await deps.db(work)
    if handled is None or handled.alert is None:
        return
    outcome = "resolved" if handled.changed else "already"
    await message.reply_text(render("alert_pressed", language, outcome=outcome))
    if handled.changed and handled.alert.id is not None:
        await _edit_notices(context, handled.alert.id)


async def _reply(update: Update, context: BotContext, text: str) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, parse_mode=ParseMode.HTML)


async def _refuse(update: Update) -> None:
    """Someone not on the allow-list: the neutral reply in a private chat, silence in a group."""
    chat = update.effective_chat
    if chat is not None and chat.type == ChatType.PRIVATE:
        await reply_neutral(update)


async def list_open_alerts(update: Update, context: BotContext) -> None:
    """/alerts: every alert not yet resolved."""
    if not _allowed(update, context):
        await _refuse(update)
        return
    rows = await context.deps.db(lambda s: alert_rows(s, only_open=True, last=50))
    view = [r.__dict__ | {"created": f"{r.created_at:%Y-%m-%d %H:%M}"} for r in rows]
    language = context.deps.settings.coordinator_language
    await _reply(update, context, render("coordinator_alerts", language, rows=view))


async def list_due_visits(update: Update, context: BotContext) -> None:
    """/due: visits due within a week, overdue, or missed lately."""
    if not _allowed(update, context):
        await _refuse(update)
        return
    settings = context.deps.settings
    today = context.deps.now().astimezone(ZoneInfo(settings.timezone)).date()
    rows = await context.deps.db(lambda s: visit_rows(s, today=today, first=80))
    view = [r.__dict__ | {"due": r.due_date.isoformat()} for r in rows]
    await _reply(update, context, render("coordinator_due", settings.coordinator_language,
                                         rows=view))  # fmt: skip


async def show_participant(update: Update, context: BotContext) -> None:
    """/participant STUDY_ID: visits, answers in brief, alerts and consent events."""
    if not _allowed(update, context):
        await _refuse(update)
        return
    language = context.deps.settings.coordinator_language
    args = context.args or []
    if len(args) != 1:
        await _reply(update, context, render("coordinator_usage", language, what="participant"))
        return
    study_id = args[0]

    def load(session: Session) -> dict[str, Any] | None:
        participant = participant_by_study_id(session, study_id)
        if participant is None:
            return None
        events = [{"at": f"{e.at:%Y-%m-%d}", "what": e.what, "text": e.text[:160]}
                  for e in timeline(session, participant)][-40:]  # fmt: skip
        return {"study_id": participant.study_id, "status": participant.status,
                "events": events}  # fmt: skip

    view = await context.deps.db(load)
    if view is None:
        await _reply(update, context, render("coordinator_usage", language, what="unknown"))
        return
    await _reply(update, context, render("coordinator_timeline", language, **view))


def handlers(deps: Deps) -> list[BaseHandler[Any, Any, Any]]:
    """In order, before the participants' catch-all handlers (bot/app.py)."""
    reply = filters.REPLY & filters.TEXT & ~filters.COMMAND & _FromCoordinator(deps)
    return [
        CallbackQueryHandler(press_alert_button, pattern=PATTERN),
        CommandHandler("alerts", list_open_alerts),
        CommandHandler("due", list_due_visits),
        CommandHandler("participant", show_participant),
        MessageHandler(reply, take_resolve_note),
    ]


__all__ = ["ANSWERS", "handlers"]
