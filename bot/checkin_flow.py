"""Entry points of the check-in conversation, one per kind of update, each in one transaction.

Every press is checked against the rows: the participant who pressed, the check-in's state and
the step the button was shown at. Anything else is stale and changes nothing. A replayed update
(the same or an older update id) is recognised and ignored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session

from bot.checkin_turn import Outcome, Turn, local_today, may_answer, stale, window_open
from bot.keyboards import CheckinButton
from bot.replies import enqueue_text
from messages.instruments import latest, start_words
from models.checkins import (
    CheckIn,
    CheckInStatus,
    checkin_for_visit,
    in_progress_checkin,
    open_visit_for,
    shown_message,
    start_checkin,
)
from models.locks import lock_participant_by_user, locked_checkin_with_visit
from models.participants import participant_by_user
from models.reach import mark_reachable
from models.tables import Participant, Visit
from study.consent import has_left_chat
from study.validators import normalise


@dataclass(frozen=True)
class Update:
    """What the flow needs to know about an incoming update."""

    user_id: int
    update_id: int
    now: dt.datetime
    team_contact: str
    # Set when the caller hands the update's messages over in its own transaction
    # (bot/checkin._handing_over): the lease they are inserted with, handed over already.
    hand_over: dt.timedelta | None = None


def _reply(session: Session, participant: Participant, u: Update, template: str) -> Outcome:
    message_id = enqueue_text(
        session,
        participant=participant,
        now=u.now,
        template=template,
        purpose=f"reply:{u.update_id}:{template}",
    )
    return Outcome(outbox=[message_id] if message_id is not None else [])


def _replayed(checkin: CheckIn, u: Update) -> bool:
    """True for an update this check-in has already acted on; otherwise remember this one."""
    if checkin.last_update_id is not None and u.update_id <= checkin.last_update_id:
        return True
    checkin.last_update_id = u.update_id
    return False


def _turn(session: Session, participant: Participant, checkin: CheckIn, u: Update) -> Turn:
    return Turn(session, participant, checkin, u.now, u.team_contact, hand_over=u.hand_over)


def _resume(session: Session, participant: Participant, visit: Visit, u: Update) -> Outcome:
    q = latest()
    checkin = start_checkin(
        session, visit=visit, instrument=q.instrument, version=q.version, now=u.now
    )
    if checkin.status != CheckInStatus.IN_PROGRESS:
        return _reply(session, participant, u, "checkin_already_done")
    if _replayed(checkin, u):
        return Outcome()
    return Outcome(outbox=_turn(session, participant, checkin, u).resume())


def press_open(session: Session, u: Update, visit_id: int) -> Outcome:
    """The schedule's "start the check-in" button (`checkin:open:<visit id>`)."""
    participant = participant_by_user(session, u.user_id)
    visit = session.get(Visit, visit_id)
    if participant is None or visit is None or visit.participant_id != participant.id:
        return stale(participant)
    if not may_answer(participant):
        return stale(participant)
    if not window_open(visit, local_today(participant, u.now)):
        existing = checkin_for_visit(session, visit_id)
        done = existing is not None and existing.status != CheckInStatus.IN_PROGRESS
        return _reply(
            session, participant, u, "checkin_already_done" if done else "checkin_closed"
        )
    return _resume(session, participant, visit, u)


def _reachable_again(session: Session, participant: Participant, now: dt.datetime) -> None:
    """Do for an answer press what the screens it skips did (bot.replies.passes_screens): a
    participant Telegram refused is reachable again, before the turn queues its reply, unless
    they left chat contact (the withdrawal screen stopped their press before that one ran)."""
    if participant.unreachable and not has_left_chat(participant):
        assert participant.id is not None
        mark_reachable(session, participant_id=participant.id, now=now)


def press_answer(session: Session, u: Update, button: CheckinButton) -> Outcome:
    """A button under a question or the summary; no screen read the participant before it."""
    participant = lock_participant_by_user(session, u.user_id)  # its reply is handed over here
    if participant is None:
        return stale(None)
    _reachable_again(session, participant, u.now)
    if not may_answer(participant):
        return stale(participant)
    found = locked_checkin_with_visit(session, button.checkin_id)
    if found is None:
        return stale(participant)
    checkin, visit = found  # the visit stays in the session for the turn (a submit needs it)
    if (
        checkin.participant_id != participant.id
        or checkin.status != CheckInStatus.IN_PROGRESS
        or checkin.step != button.step
        or not window_open(visit, local_today(participant, u.now))
    ):
        return stale(participant)
    turn = _turn(session, participant, checkin, u)
    if _replayed(checkin, u):
        return turn.redraw()
    return turn.press(button.code)


def _active_checkin(session: Session, participant: Participant, u: Update) -> CheckIn | None:
    assert participant.id is not None
    checkin = in_progress_checkin(session, participant_id=participant.id)
    if checkin is None:
        return None
    visit = session.get(Visit, checkin.visit_id)
    return checkin if window_open(visit, local_today(participant, u.now)) else None


def typed_text(session: Session, u: Update, text: str) -> Outcome:
    """Typed text: an answer, "start"/"开始" to open or resume, or not ours (handled False)."""
    participant = lock_participant_by_user(session, u.user_id)  # its reply is handed over here
    if participant is None or not may_answer(participant):
        return Outcome(handled=False)
    is_start = normalise(text).casefold() in start_words()
    checkin = _active_checkin(session, participant, u)
    if checkin is not None:
        if _replayed(checkin, u):
            return Outcome()
        shown = shown_message(session, purpose=f"checkin:{checkin.id}:{checkin.step}")
        turn = _turn(session, participant, checkin, u)
        outbox = turn.resume() if is_start else turn.typed(text)
        # The question answered by typing keeps no buttons: they would only be stale now.
        clear = [shown] if shown is not None else []
        return Outcome(outbox=outbox, clear_keyboards=clear)
    if not is_start:
        return Outcome(handled=False)
    assert participant.id is not None
    visit = open_visit_for(
        session, participant_id=participant.id, today=local_today(participant, u.now)
    )
    if visit is None:
        return Outcome(handled=False)
    return _resume(session, participant, visit, u)


def other_media(session: Session, u: Update) -> Outcome:
    """A sticker, photo, voice note…: during a check-in, ask for buttons or typed text."""
    participant = participant_by_user(session, u.user_id)
    if participant is None or not may_answer(participant):
        return Outcome(handled=False)
    if _active_checkin(session, participant, u) is None:
        return Outcome(handled=False)
    return _reply(session, participant, u, "checkin_use_buttons")
