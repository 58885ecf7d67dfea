"""The check-in in chat: buttons, typed answers and everything else, each handed to the flow."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence

from sqlmodel import Session
from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot import checkin_flow as flow
from bot import general
from bot.alerting import with_notices
from bot.checkin_turn import Outcome
from bot.deps import BotContext, Deps, urgent
from bot.keyboards import DONE, CheckinButton, parse_open
from bot.replies import sender
from messages import alert_rules
from models import outbox
from models.tables import OutboxMessage
from study.alert_rules import may_raise_red

log = logging.getLogger(__name__)
Handed = list[OutboxMessage]  # rows claimed and handed over in the handler's own transaction


def _about(update: Update, context: BotContext) -> flow.Update | None:
    user = update.effective_user
    if user is None:
        return None
    deps = context.deps
    return flow.Update(user.id, update.update_id, deps.now(), deps.settings.team_contact)


def _lease(deps: Deps) -> dt.timedelta:
    return dt.timedelta(seconds=deps.settings.send_lease_seconds)


def _handed_over(about: flow.Update, deps: Deps) -> flow.Update:
    """`about` for work that `_handing_over` wraps: its messages are inserted handed over."""
    return dataclasses.replace(about, hand_over=_lease(deps))


async def press_checkin_button(update: Update, context: BotContext) -> None:
    """Act on a check-in button after checking it against the check-in's current state."""
    query, about = update.callback_query, _about(update, context)
    if query is None or about is None:
        return
    visit_id, button = parse_open(query.data), CheckinButton.parse(query.data)
    deps = context.deps
    if visit_id is not None:
        outcome = await deps.db(lambda s: flow.press_open(s, about, visit_id))
        notices: Handed = []
        handed: Handed | None = None
    elif button is not None:
        handed_over = _handed_over(about, deps)
        answer = with_notices(deps, lambda s: flow.press_answer(s, handed_over, button))
        work = _handing_over(deps, answer)
        # An answer that may raise a RED alert goes before other presses and bookkeeping.
        red = may_raise_red(
            alert_rules.current(), button.code, completes_choice=button.code == DONE
        )
        with urgent() if red else contextlib.nullcontext():
            outcome, notices, handed = await deps.db(work)
    else:
        await general.answer_stale_button(update, context)
        return
    with sender(context).holding([*notices, *(handed or [])]):
        await query.answer(outcome.notice)
        await _deliver_notices(context, notices)  # an alert's notice before the next question
        await _edit_pressed(query, outcome)
        await _deliver(context, outcome, handed)


def _handing_over(
    deps: Deps, work: Callable[[Session], tuple[Outcome, list[int]]]
) -> Callable[[Session], tuple[Outcome, Handed, Handed]]:
    """`work`, then, in the same transaction, the hand-over of the messages it queued: the
    coordinators' notices of any alert it raised, and the participant's own messages.

    The answer and its reply commit together, and each goes to Telegram without a claim
    transaction of its own (`outbox.hand_over_queued`: `claim`'s checks, under the participant's
    lock, which the flow took first: models.locks.lock_participant_by_user).
    """
    lease = _lease(deps)

    def run(session: Session) -> tuple[Outcome, Handed, Handed]:
        outcome, notices = work(session)
        now = deps.now()
        return (
            outcome,
            outbox.hand_over_queued(session, message_ids=notices, now=now, lease=lease),
            outbox.hand_over_queued(session, message_ids=outcome.outbox, now=now, lease=lease),
        )

    return run


async def _deliver_notices(context: BotContext, notices: Handed) -> None:
    """The notices of the alerts an answer raised, before anything else it sends."""
    if notices:
        with urgent():
            await sender(context).send_claimed(notices)


async def _deliver(
    context: BotContext, outcome: Outcome, handed: Sequence[OutboxMessage] | None = None
) -> None:
    """Clear old keyboards, then send the update's messages: `handed` when the handler's
    transaction handed them over already, else the outcome's outbox rows."""
    for chat_id, message_id in outcome.clear_keyboards:
        try:
            await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
        except TelegramError as exc:  # no buttons left, or too old to edit: nothing to do
            log.debug("keyboard not removed: %s", type(exc).__name__)
    if handed is not None:
        await sender(context).send_claimed(handed)
    else:
        await sender(context).flush(outcome.outbox)


async def _edit_pressed(query: CallbackQuery, outcome: Outcome) -> None:
    """Show the chosen answer in the pressed message, or update or drop its keyboard."""
    try:
        if outcome.edit_html is not None:
            await query.edit_message_text(outcome.edit_html, parse_mode=ParseMode.HTML)
        elif outcome.edit_markup is not None:
            markup = InlineKeyboardMarkup.de_json(outcome.edit_markup, query.get_bot())
            await query.edit_message_reply_markup(markup)
        elif outcome.drop_keyboard:
            await query.edit_message_reply_markup(None)
    except BadRequest as exc:
        if "not modified" in exc.message:  # a repeated press on a copy showing it already
            return
        log.warning("could not edit a check-in message: %s", type(exc).__name__)
    except TelegramError as exc:  # too old to edit, or Telegram failed: the answer is stored
        log.warning("could not edit a check-in message: %s", type(exc).__name__)


async def answer_text(update: Update, context: BotContext) -> None:
    """Take typed text as an answer, or as "start"; anything else gets the general reply."""
    message, about = update.effective_message, _about(update, context)
    if message is None or message.text is None or about is None:
        return
    text = message.text
    deps = context.deps
    about = _handed_over(about, deps)
    with urgent():  # the answer may raise an alert: it goes before others' bookkeeping
        outcome, notices, handed = await deps.db(
            _handing_over(deps, with_notices(deps, lambda s: flow.typed_text(s, about, text)))
        )
    with sender(context).holding([*notices, *handed]):
        await _deliver_notices(context, notices)  # an alert's notice before the next question
        if not outcome.handled:
            await general.answer_anything_else(update, context)
            return
        await _deliver(context, outcome, handed)


async def answer_other_media(update: Update, context: BotContext) -> None:
    """Ask for buttons or typed text when a sticker, photo or voice note comes mid-check-in."""
    about = _about(update, context)
    if about is None:
        return
    outcome = await context.deps.db(lambda s: flow.other_media(s, about))
    if not outcome.handled:
        await general.answer_anything_else(update, context)
        return
    await sender(context).flush(outcome.outbox)
