"""Withdrawal in one command, /privacy, and the replies to someone who has left chat contact.

Buttons carry `wd:v1:<step>[:<scope>[:<samples>]]`. Steps: `s` choose a scope, `b` choose what
happens to samples, `y` confirm, `n` back to the choices, `k` keep everything. Every press is
checked against the participant's consent as it stands now, never trusted on its own.
"""

from __future__ import annotations

import asyncio
import logging
import re
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session
from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import ApplicationHandlerStop, filters

from bot.alerting import send_alert_notices
from bot.deps import BotContext
from bot.durable import mark_handled
from bot.replies import (
    current_participant,
    enqueue_text,
    passes_screens,
    reply_neutral,
    screened_participant,
    sender,
)
from messages.phrases import emergency_phrases, stop_words
from messages.render import render
from models.consent import Notify, Outcome, consent_state, with_sends_settled, withdraw
from models.tables import Participant, ParticipantStatus
from study.consent import (
    Channel,
    ConsentError,
    Samples,
    Scope,
    has_left_chat,
    is_stop_request,
    offered_scopes,
)
from study.emergency import mentions_emergency

log = logging.getLogger(__name__)

PATTERN = r"^wd:v1:"
_DATA = re.compile(r"^wd:v1:([sbynk])(?::(contact|biospecimen|study))?(?::(destroy|keep))?$")
Markup = dict[str, Any]


class _StopWords(filters.MessageFilter):
    """A whole message that is one of the stop words (messages/stop_words.yaml)."""

    def filter(self, message: Any) -> bool:
        return bool(message.text) and is_stop_request(message.text, stop_words())


STOP_WORDS = _StopWords(name="stop_words")


def _button(language: str, choice: str, data: str) -> Markup:
    return {"text": render("withdraw_button", language, choice=choice), "callback_data": data}


def _keyboard(rows: list[Markup]) -> Markup:
    return {"inline_keyboard": [[row] for row in rows]}


def menu_markup(language: str, scopes: list[Scope]) -> Markup:
    """The choices: only scopes the participant still has, then 'keep everything'."""
    rows = [_button(language, s.value, f"wd:v1:s:{s.value}") for s in scopes]
    return _keyboard([*rows, _button(language, "keep_all", "wd:v1:k")])


def _confirmation(lang: str, scope: Scope, samples: Samples | None) -> tuple[str, Markup]:
    data = f"wd:v1:y:{scope.value}" + (f":{samples.value}" if samples else "")
    rows = [_button(lang, "yes", data), _button(lang, "no", "wd:v1:n")]
    text = render("withdraw_confirm", lang, scope=scope.value, samples=samples and samples.value)
    return text, _keyboard(rows)


def _samples_question(lang: str) -> tuple[str, Markup]:
    rows = [_button(lang, c, f"wd:v1:b:biospecimen:{c}") for c in ("destroy", "keep")]
    return render("withdraw_samples", lang), _keyboard([*rows, _button(lang, "no", "wd:v1:n")])


async def _scopes(context: BotContext, participant: Participant) -> list[Scope]:
    state = await context.deps.db(lambda s: consent_state(s, participant))
    if participant.status != ParticipantStatus.ACTIVE:
        return []
    return offered_scopes(state)


async def _reply(
    update: Update, context: BotContext, participant: Participant, purpose: str,
    template: str, markup: Markup | None = None, **params: Any,
) -> None:  # fmt: skip
    now = context.deps.now()
    work = partial(enqueue_text, participant=participant, purpose=purpose, template=template,
                   now=now, markup=markup, **params)  # fmt: skip
    message_id = await context.deps.db(work)
    await sender(context).flush([message_id] if message_id is not None else [])


async def offer_withdrawal(update: Update, context: BotContext) -> None:
    """Show the withdrawal choices (for /withdraw and for stop words alike)."""
    participant = await current_participant(update, context)
    if participant is None:
        await reply_neutral(update)
        return
    scopes = await _scopes(context, participant)
    markup = menu_markup(participant.language, scopes)
    purpose = f"withdraw-menu:{participant.study_id}:{update.update_id}"
    names = [s.value for s in scopes]
    await _reply(update, context, participant, purpose, "withdraw_menu", markup, scopes=names)


async def show_privacy(update: Update, context: BotContext) -> None:
    """Say what the bot stores about the participant and how to withdraw."""
    participant = await current_participant(update, context)
    if participant is None:
        await reply_neutral(update)
        return
    team = context.deps.settings.team_contact
    purpose = f"reply:{update.update_id}:privacy"
    await _reply(update, context, participant, purpose, "privacy", team_contact=team)


async def press_withdrawal_button(update: Update, context: BotContext) -> None:
    """Move through the choices by editing the menu; confirming withdraws at once."""
    query = update.callback_query
    assert query is not None
    participant = await current_participant(update, context)
    found = _DATA.match(query.data or "")
    chat = query.message.chat.id if query.message is not None else None
    if participant is None or found is None or chat != participant.telegram_chat_id:
        await query.answer(render("stale_button", participant.language if participant else "zh"))
        return
    step, scope_name, samples_name = found.groups()
    lang, scopes = participant.language, await _scopes(context, participant)
    scope = Scope(scope_name) if scope_name else None
    samples = Samples(samples_name) if samples_name else None
    if (scope is not None and scope not in scopes) or (step in "yb" and scope is None):
        await query.answer(render("stale_button", lang))
        return
    if step == "y" and scope is not None:
        await _confirm(update, context, participant, scope, samples)
        return
    if step == "k":
        await query.edit_message_text(render("withdraw_kept", lang), parse_mode=ParseMode.HTML)
        await query.answer()
        return
    if step == "n" or scope is None:
        text = render("withdraw_menu", lang, scopes=[s.value for s in scopes])
        markup = menu_markup(lang, scopes)
    elif scope is Scope.BIOSPECIMEN and samples is None:
        text, markup = _samples_question(lang)
    else:
        text, markup = _confirmation(lang, scope, samples)
    keyboard = InlineKeyboardMarkup.de_json(markup, query.get_bot())
    # Edit first, then answer: the participant's spinner stops once the new step is shown.
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=keyboard)
    await query.answer()


async def _confirm(
    update: Update, context: BotContext, participant: Participant, scope: Scope,
    samples: Samples | None,
) -> None:  # fmt: skip
    query = update.callback_query
    assert query is not None and participant.id is not None
    if scope is Scope.BIOSPECIMEN and samples is None:
        await query.answer(render("stale_button", participant.language))
        return
    try:
        outcome = await withdraw_now(context, participant.id, scope, samples,
                                     actor="participant", actor_id=f"participant:"
                                     f"{participant.study_id}", channel=Channel.CHAT)  # fmt: skip
    except ConsentError:
        await query.answer(render("stale_button", participant.language))
        return
    await query.edit_message_reply_markup(reply_markup=None)
    await query.answer()
    ids = [i for i in (outcome.confirmation_id, outcome.alert_notice_id) if i is not None]
    await sender(context).flush(ids)


async def withdraw_now(
    context: BotContext, participant_id: int, scope: Scope, samples: Samples | None, *,
    actor: str, actor_id: str, channel: str, reason: str | None = None,
) -> Outcome:  # fmt: skip
    """Withdraw in one transaction, on a worker thread, once no send to them is under way."""
    deps, now = context.deps, context.deps.now()
    settings = deps.settings
    notify = Notify(settings.coordinator_chat_id, settings.coordinator_language)

    def work(session: Session, wait_for_sends: bool) -> Outcome:
        return withdraw(
            session, participant_id=participant_id, scope=scope, samples=samples, actor=actor,
            actor_id=actor_id, channel=channel, now=now, render=render,
            team_contact=settings.team_contact, notify=notify, reason=reason,
            wait_for_sends=wait_for_sends,
        )  # fmt: skip

    return await asyncio.to_thread(with_sends_settled, deps.engine, work)


async def screen_after_withdrawal(update: Update, context: BotContext) -> None:
    """Before anything else: someone who left chat contact gets one fixed reply, and nothing more.

    The reply goes out at most once per local day, however often they write; an emergency
    phrase always gets the emergency text. Button presses are answered and change nothing. A
    check-in answer press passes unread (`passes_screens`): its turn gives the same answer,
    and the later groups (alert notices, the handled mark) run for it as for any update.
    """
    chat = update.effective_chat
    if chat is None or chat.type != chat.PRIVATE or passes_screens(update):
        return
    participant = await screened_participant(update, context)
    if participant is None or not has_left_chat(participant):
        return
    if update.callback_query is not None:
        await update.callback_query.answer(render("stale_button", participant.language))
    elif update.effective_message is not None:
        text = update.effective_message.text or update.effective_message.caption or ""
        if mentions_emergency(text, emergency_phrases()):
            purpose = f"withdrawn-emergency:{participant.study_id}:{update.update_id}"
            await _reply(update, context, participant, purpose, "emergency")
        else:
            day = context.deps.now().astimezone(ZoneInfo(participant.timezone)).date()
            purpose = f"withdrawn-reply:{participant.study_id}:{day.isoformat()}"
            team = context.deps.settings.team_contact
            await _reply(update, context, participant, purpose, "withdrawn_reply",
                         team_contact=team)  # fmt: skip
    # Stopping here skips the later groups, so do their work: alert notices, then "handled".
    await send_alert_notices(update, context)
    await mark_handled(update, context)
    raise ApplicationHandlerStop
