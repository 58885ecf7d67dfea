"""One update's work on one check-in, inside one transaction: state in rows, rules in study/.

No Telegram here: it returns an `Outcome` that bot/checkin.py turns into an answered callback,
an edited message and outbox deliveries. Every answer is stored in the same transaction that
queues the next question, so a crash between questions loses nothing that was answered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot import keyboards as kb
from bot.keyboards import Markup
from bot.replies import enqueue_text
from messages.instruments import InstrumentTexts, definition, texts
from messages.render import render
from models import escalation
from models.checkins import (
    CheckIn,
    CheckInStatus,
    current_answers,
    finish_checkin,
    move_to,
    record_answer,
    report_death,
    retire_answers,
)
from models.tables import Participant, Visit, VisitStatus
from study import questionnaire as qn
from study.validators import Problem


@dataclass
class Outcome:
    """What to do with the update: `handled` False lets the general reply answer it instead."""

    handled: bool = True
    notice: str | None = None  # the callback answer's text (stale or invalid presses)
    edit_html: str | None = None  # new text for the pressed message, its keyboard removed
    edit_markup: Markup | None = None  # new keyboard only (multiple-choice toggles)
    drop_keyboard: bool = False
    outbox: list[int] = field(default_factory=list)
    clear_keyboards: list[tuple[int, int]] = field(default_factory=list)  # (chat, message)


def local_today(participant: Participant, now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(participant.timezone)).date()


def may_answer(participant: Participant) -> bool:
    # Someone pressing a button is reachable whatever the last failed send said.
    return participant.status == "active" and participant.chat_contact


def window_open(visit: Visit | None, today: dt.date) -> bool:
    return (
        visit is not None and visit.status == VisitStatus.OPEN and today <= visit.window_closes_on
    )


def stale(participant: Participant | None) -> Outcome:
    return Outcome(notice=render("stale_button", participant.language if participant else "zh"))


class Turn:
    """One update's work on one check-in: answers so far, the pinned version, the words."""

    def __init__(
        self,
        session: Session,
        participant: Participant,
        checkin: CheckIn,
        now: dt.datetime,
        team_contact: str,
        *,
        hand_over: dt.timedelta | None = None,
    ) -> None:
        assert checkin.id is not None and participant.id is not None
        self.session, self.participant, self.checkin, self.now = session, participant, checkin, now
        self.team_contact = team_contact
        self.hand_over = hand_over  # the caller hands our messages over (outbox.enqueue)
        self.q = definition(checkin.version, checkin.instrument)
        self.words: InstrumentTexts = texts(checkin.version, participant.language)
        self.answers = current_answers(session, checkin.id)
        self.context = qn.Context(local_today(participant, now), participant.enrolled_on)
        self.raised: list[int] = []  # emergency texts from RED answers (issue 5), sent first

    def _enqueue(
        self, purpose: str, template: str, markup: Markup | None = None, *,
        handed_over: bool = True, **params: Any,
    ) -> list[int]:  # fmt: skip
        message_id = enqueue_text(
            self.session,
            participant=self.participant,
            purpose=f"checkin:{self.checkin.id}:{purpose}",
            template=template,
            now=self.now,
            markup=markup,
            hand_over=self.hand_over if handed_over else None,
            **params,
        )
        return [message_id] if message_id is not None else []

    def ask(self, item: qn.Item, problem: Problem | None = None) -> list[int]:
        """Show `item` as the next step, with the answer already given ticked."""
        given = self.answers.get(item.id)
        if item.id == self.checkin.current_item and self.checkin.draft:
            given = self.checkin.draft  # asked again (re-ask, resume): keep the ticks so far
        selected = frozenset(given.split(qn.MULTI_SEPARATOR)) if given else frozenset()
        draft = qn.MULTI_SEPARATOR.join(sorted(selected)) if item.kind is qn.Kind.MULTI else None
        step = move_to(self.session, checkin=self.checkin, item=item.id, draft=draft, now=self.now)
        back = qn.previous_item(self.q, self.answers, item.id) is not None
        markup = kb.question_keyboard(
            item,
            self.words,
            checkin_id=self.checkin.id or 0,
            step=step,
            selected=selected,
            can_go_back=back,
        )
        return self._enqueue(
            str(step),
            "checkin_question",
            markup,
            question=self.words.question(item, self.answers.get("respondent")),
            hint=self.words.hint(item),
            problem=self.words.problem(problem) if problem else None,
        )

    def summary_items(self) -> list[qn.Item]:
        return [i for i in qn.applicable(self.q, self.answers) if i.id in self.answers]

    def show_summary(self, problem: Problem | None = None) -> list[int]:
        items = self.summary_items()
        step = move_to(self.session, checkin=self.checkin, item=None, draft=None, now=self.now)
        lines = [
            {
                "number": n,
                "label": self.words.short(item),
                "answer": _clip(self.words.answer(item, self.answers[item.id])),
            }
            for n, item in enumerate(items, start=1)
        ]
        markup = kb.summary_keyboard(
            len(items), self.words, checkin_id=self.checkin.id or 0, step=step
        )
        return self._enqueue(
            str(step),
            "checkin_summary",
            markup,
            lines=lines,
            problem=self.words.problem(problem) if problem else None,
        )

    def resume(self) -> list[int]:
        """Show where this check-in stands: its first question, the current one, or the summary."""
        if self.checkin.step == 0:
            return self.advance()
        if self.checkin.current_item is None:
            return self.show_summary()
        return self.ask(self.q.item(self.checkin.current_item))

    def advance(self) -> list[int]:
        step = qn.next_step(self.q, self.answers)
        if isinstance(step, qn.Ask):
            return self.ask(step.item)
        if isinstance(step, qn.Ended):
            return self.end_with_death_report()
        return self.show_summary()

    def store(self, item: qn.Item, value: str, raw: str | None) -> None:
        respondent = value if item.id == "respondent" else self.answers.get("respondent")
        record_answer(
            self.session,
            checkin=self.checkin,
            item=item.id,
            value=value,
            raw=raw,
            respondent=respondent,
            now=self.now,
            replaces=item.id in self.answers,  # read under the check-in's lock
        )
        self.answers[item.id] = value
        self.raised += escalation.on_answer(
            self.session, participant=self.participant, checkin=self.checkin,
            answers=qn.effective_answers(self.q, self.answers), now=self.now,
        )  # fmt: skip

    def _retire_unasked(self) -> None:
        asked = qn.effective_answers(self.q, self.answers)
        unasked = [item for item in self.answers if item not in asked]
        retire_answers(self.session, checkin_id=self.checkin.id or 0, items=unasked)

    def _visit(self) -> Visit:
        visit = self.session.get(Visit, self.checkin.visit_id)
        assert visit is not None
        return visit

    def submit(self) -> list[int]:
        self._retire_unasked()
        finish_checkin(
            self.session,
            checkin=self.checkin,
            visit=self._visit(),
            status=CheckInStatus.COMPLETED,
            now=self.now,
        )
        thanks = self._enqueue("thanks", "checkin_thanks")
        answers = qn.effective_answers(self.q, self.answers)
        if escalation.on_submit(self.session, participant=self.participant,
                                checkin=self.checkin, answers=answers, now=self.now):  # fmt: skip
            return thanks + self._enqueue("amber", "checkin_amber")
        return thanks

    def end_with_death_report(self) -> list[int]:
        self._retire_unasked()
        finish_checkin(
            self.session,
            checkin=self.checkin,
            visit=self._visit(),
            status=CheckInStatus.DEATH_REPORTED,
            now=self.now,
        )
        report_death(
            self.session, participant=self.participant, checkin=self.checkin, now=self.now
        )
        # The last message they get, queued after the report: the send rule lets a condolence go
        # only while a death report awaits a coordinator (study.consent.may_send), so it is
        # handed over, and retried if Telegram fails, like any other reply.
        return self._enqueue("condolence", "checkin_condolence", team_contact=self.team_contact)

    # ---- inputs -------------------------------------------------------------------------

    def press(self, code: str) -> Outcome:
        if self.checkin.current_item is None:
            return self._press_on_summary(code)
        item = self.q.item(self.checkin.current_item)
        if code == kb.BACK:
            previous = qn.previous_item(self.q, self.answers, item.id)
            if previous is None:
                return stale(self.participant)
            return Outcome(drop_keyboard=True, outbox=self.ask(previous))
        given: qn.Input
        if item.kind is qn.Kind.MULTI and code[:1] in (kb.TICK, kb.UNTICK):
            return self._tick(item, code[1:], on=code[:1] == kb.TICK)
        if item.kind is qn.Kind.MULTI and code == kb.DONE:
            given = qn.Choice(self.checkin.draft or "")
        elif code == kb.SKIP:
            given = qn.Skip()
        else:
            given = qn.Choice(code)
        value = qn.accept(item, given, self.context)
        if isinstance(value, Problem):
            return Outcome(notice=self.words.problem(value))
        label = self.words.answer(item, value)
        self.store(item, value, raw=label)
        edit = render(
            "checkin_answered",
            self.participant.language,
            question=self.words.question(item, self.answers.get("respondent")),
            answer=label,
        )
        outbox = self.raised + self.advance()
        return Outcome(edit_html=edit, outbox=outbox)

    def _ticked(self) -> frozenset[str]:
        return frozenset(c for c in (self.checkin.draft or "").split(qn.MULTI_SEPARATOR) if c)

    def _tick(self, item: qn.Item, code: str, *, on: bool) -> Outcome:
        """Tick or untick; the pressed keyboard is redrawn even when nothing changed, so an
        older copy of the question catches up with the ticks stored."""
        selected = qn.tick(item, self._ticked(), code, on=on)
        self.checkin.draft = qn.MULTI_SEPARATOR.join(sorted(selected))
        self.session.add(self.checkin)
        return Outcome(edit_markup=self._multi_keyboard(item, selected))

    def _multi_keyboard(self, item: qn.Item, selected: frozenset[str]) -> Markup | None:
        back = qn.previous_item(self.q, self.answers, item.id) is not None
        return kb.question_keyboard(
            item,
            self.words,
            checkin_id=self.checkin.id or 0,
            step=self.checkin.step,
            selected=selected,
            can_go_back=back,
        )

    def redraw(self) -> Outcome:
        """For a press replayed after a crash: its effect is stored, but the tick it showed on
        a multiple-choice keyboard may have been lost with the process; draw the ticks again."""
        if self.checkin.current_item is None:
            return Outcome()
        item = self.q.item(self.checkin.current_item)
        if item.kind is not qn.Kind.MULTI:
            return Outcome()
        return Outcome(edit_markup=self._multi_keyboard(item, self._ticked()))

    def _press_on_summary(self, code: str) -> Outcome:
        if code == kb.SUBMIT:
            return Outcome(drop_keyboard=True, outbox=self.submit())
        if code == kb.BACK:
            previous = qn.previous_item(self.q, self.answers, None)
            if previous is None:
                return stale(self.participant)
            return Outcome(drop_keyboard=True, outbox=self.ask(previous))
        items = self.summary_items()
        number = code[len(kb.EDIT) :] if code.startswith(kb.EDIT) else ""
        if not number.isdigit() or not 1 <= int(number) <= len(items):
            return stale(self.participant)
        return Outcome(drop_keyboard=True, outbox=self.ask(items[int(number) - 1]))

    def typed(self, text: str) -> list[int]:
        if self.checkin.current_item is None:
            return self.show_summary(Problem("use_buttons"))
        item = self.q.item(self.checkin.current_item)
        value = qn.accept(item, qn.Typed(text), self.context)
        if isinstance(value, Problem):
            return self.ask(item, value)
        self.store(item, value, raw=text)
        return self.raised + self.advance()


def _clip(text: str, limit: int = 120) -> str:
    """Keep the summary well inside Telegram's limit whatever was typed."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
