"""The dispatch pass: plan new participants, then turn what is due as of `now` into outbox rows.

Every action is a guarded state change written with its outbox row in one transaction, so a
second pass, or a second process, finds nothing left to do; the outbox's unique purpose makes
a duplicate message impossible even if two passes did race to the same visit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from followup.settings import Settings
from messages.render import render, renderer
from models import alerts, outbox, visits
from models.db import transaction
from models.tables import AlertTier, Participant, Visit
from scheduler import escalation
from scheduler.runner import PeriodicJob
from study.contact import may_message
from study.visits import (
    PROMPT,
    Decision,
    ExistingVisit,
    PlannedVisit,
    ScheduleRules,
    after_quiet_hours,
    decide,
    first_action_at,
    plan_visits,
    replan,
)

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class PassReport:
    """What one pass did: counts, and (study id, visit number, event) for each visit touched."""

    planned: int = 0
    visits_added: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    held: int = 0
    missed: int = 0
    cancelled: int = 0
    events: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(self.sent.values())

    def note(self, study_id: str, number: int, event: str) -> None:
        self.events.append((study_id, number, event))
        log.info("visit %s:%s %s", study_id, number, event)


def rules_from(settings: Settings) -> ScheduleRules:
    quiet_start, quiet_end = settings.quiet_window()
    return ScheduleRules(
        interval_months=settings.visit_interval_months,
        send_hour=settings.send_hour,
        reminder_days=tuple(settings.reminder_days),
        window_days=settings.window_days,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        study_end=settings.study_end,
    )


def plan_batch(session: Session, *, rules: ScheduleRules, now: dt.datetime, report: PassReport,
               limit: int = BATCH) -> bool:  # fmt: skip
    """(Re-)plan the visits of participants new or planned under other settings; True if more."""
    key = rules.plan_key()
    batch = visits.participants_needing_plan(session, key=key, limit=limit)
    rows: list[dict[str, Any]] = []
    stored = visits.visits_of_many(session, [p.id for p in batch if p.id is not None])
    for participant in batch:
        assert participant.id is not None
        zone = ZoneInfo(participant.timezone)
        today = now.astimezone(zone).date()
        existing = stored[participant.id]
        change = replan(
            [ExistingVisit(v.number, v.status, v.due_date) for v in existing],
            plan_visits(participant.enrolled_on, rules),
            today,
        )
        for planned in change.insert:
            rows.append({
                "participant_id": participant.id, "number": planned.number,
                "due_date": planned.due_date, "window_closes_on": planned.window_closes_on,
                "status": "planned", "stage": PROMPT, "created_at": now,
                "next_action_at": first_action_at(planned.due_date, zone, rules),
            })  # fmt: skip
        by_number = {v.number: v for v in existing}
        for planned in change.update:
            at = first_action_at(planned.due_date, zone, rules)
            _move(session, by_number[planned.number], planned, at)
        for number in change.cancel:
            _cancel(session, by_number[number])
        participant.plan_key = key
        session.add(participant)
        report.planned += 1
        report.visits_added += len(change.insert)
    visits.insert_visits(session, rows)
    return len(batch) == limit


def _move(session: Session, visit: Visit, planned: PlannedVisit, at: dt.datetime) -> None:
    visit.due_date, visit.window_closes_on = planned.due_date, planned.window_closes_on
    visit.next_action_at = at
    session.add(visit)


def _cancel(session: Session, visit: Visit) -> None:
    visit.status, visit.stage, visit.next_action_at = "cancelled", "done", None
    session.add(visit)


def dispatch_batch(session: Session, *, settings: Settings, rules: ScheduleRules,
                   now: dt.datetime, report: PassReport, limit: int = BATCH) -> bool:  # fmt: skip
    """Act on the visits due as of `now`; True if there may be more.

    Decided one by one (pure), written together: one guarded UPDATE for the visits' stages,
    one INSERT for the prompts and reminders, one each for the missed visits' alerts and their
    notices, all in this transaction. Texts are rendered once per language and wording.
    """
    batch = visits.due_visits(session, now=now, limit=limit)
    texts = _Texts(settings)
    moves: list[tuple[visits.DueVisit, str, dt.datetime | None, str | None]] = []
    messages: list[dict[str, Any]] = []
    missed: list[alerts.NewAlert] = []
    # `decide` is pure, and a batch's visits share a handful of stages, due dates and zones:
    # each distinct question is decided once (4,384 calls were a tenth of the send-hour pass at
    # 100,000 participants; docs/benchmarks.md, figure 3).
    decided: dict[tuple[str, dt.date, str, str, bool], Decision] = {}
    for visit, participant in batch:
        question = (visit.stage, visit.due_date, participant.timezone, participant.status,
                    may_message(participant))  # fmt: skip
        if (decision := decided.get(question)) is None:
            decision = decided[question] = decide(
                stage=visit.stage, due_date=visit.due_date, zone=ZoneInfo(participant.timezone),
                rules=rules, now=now, participant_status=participant.status,
                may_message=question[-1],
            )  # fmt: skip
        study_id = participant.study_id
        if decision.cancelled:
            report.cancelled += visits.cancel_remaining(session, participant.id)
            report.note(study_id, visit.number, "cancelled")
            continue
        stage, at = (decision.stage, decision.at) if not decision.missed else ("done", None)
        moves.append((visit, stage, at, decision.status))
        if decision.missed:
            missed.append(texts.missed(visit, participant))
            report.missed += 1
            report.note(study_id, visit.number, "missed")
        elif decision.send is not None:
            messages.append(texts.visit_message(visit, participant, decision.send))
            report.sent[decision.send] = report.sent.get(decision.send, 0) + 1
            report.note(study_id, visit.number, decision.send)
        elif decision.stage == visit.stage:
            report.held += 1
    visits.advance_many(session, moves)
    outbox.enqueue_many(session, messages, now=now)
    alerts.raise_alerts(
        session, tier=AlertTier.ADMIN, kind="visit_missed", now=now, alerts=missed,
        notify_chat_id=settings.coordinator_chat_id, language=settings.coordinator_language,
        # A window closes at midnight; the coordinators hear of it after their quiet hours.
        not_before=after_quiet_hours(now, ZoneInfo(settings.timezone), settings.quiet_window()),
    )  # fmt: skip
    return len(batch) == limit


def months_since_enrolment(participant: Participant | visits.DueParticipant, due: dt.date) -> int:
    enrolled = participant.enrolled_on
    return (due.year - enrolled.year) * 12 + due.month - enrolled.month


def checkin_button(visit_id: int, language: str) -> dict[str, Any]:
    """The one inline button of a prompt or reminder; issue 4's handler owns `checkin:*`."""
    label = render("checkin_button", language)
    return {"inline_keyboard": [[{"text": label, "callback_data": f"checkin:open:{visit_id}"}]]}


class _Texts:
    """One batch's texts: each distinct (template, language, values) is rendered once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rendered: dict[tuple[str, str, int], str] = {}
        self._buttons: dict[str, tuple[str, str]] = {}

    def _render(self, template: str, language: str, months: int) -> str:
        key = (template, language, months)
        if key not in self._rendered:
            self._rendered[key] = render(template, language, months=months)
        return self._rendered[key]

    def _button(self, visit_id: int, language: str) -> str:
        """`checkin_button` as the outbox stores it, encoded once per language with each visit's
        id put in: a nested dict per message, encoded one by one, was work for the send-hour
        pass and for Python's garbage collector (docs/benchmarks.md, figure 3)."""
        if language not in self._buttons:
            encoded = outbox.encode_markup(checkin_button(0, language))
            head, found, tail = encoded.rpartition('"checkin:open:0"')
            assert found, encoded
            self._buttons[language] = (f'{head}"checkin:open:', f'"{tail}')
        head, tail = self._buttons[language]
        return f"{head}{visit_id}{tail}"

    def visit_message(
        self, visit: visits.DueVisit, participant: visits.DueParticipant, stage: str
    ) -> dict[str, Any]:
        """The outbox row of a prompt or reminder (`outbox.enqueue_many`)."""
        assert participant.telegram_chat_id is not None
        months = months_since_enrolment(participant, visit.due_date)
        template = "prompt" if stage == PROMPT else "reminder"
        return {
            "purpose": f"{stage}:{participant.study_id}:{visit.number}",
            "chat_id": participant.telegram_chat_id,
            "participant_id": participant.id,
            "text": self._render(template, participant.language, months),
            "reply_markup": self._button(visit.id, participant.language),
        }

    def missed(
        self, visit: visits.DueVisit, participant: visits.DueParticipant
    ) -> alerts.NewAlert:
        """The ADMIN alert of a missed visit, with its notice to the coordinators."""
        notice = renderer("alert_visit_missed", self.settings.coordinator_language)(
            study_id=participant.study_id, number=visit.number, due=visit.due_date.isoformat()
        )
        return alerts.NewAlert(
            participant_id=participant.id, visit_id=visit.id,
            detail=f"visit {visit.number} window closed unanswered", notice=notice,
        )  # fmt: skip


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def dispatch_pass(
    engine: Engine, settings: Settings, now: dt.datetime, *, dry_run: bool = False,
    batch: int = BATCH,
) -> PassReport:  # fmt: skip
    """One pass as of `now`: plan, then act on everything due. A dry run changes nothing."""
    rules = rules_from(settings)
    report = PassReport()
    steps: list[Callable[[Session], bool]] = [
        lambda s: plan_batch(s, rules=rules, now=now, report=report, limit=batch),
        lambda s: dispatch_batch(s, settings=settings, rules=rules, now=now, report=report,
                                 limit=batch),
        lambda s: escalation.notice_step(s, settings=settings, now=now),  # issue 5
        lambda s: escalation.digest_step(s, settings=settings, now=now),
    ]  # fmt: skip
    if dry_run:
        try:
            with transaction(engine) as session:
                for step in steps:
                    while step(session):
                        session.flush()
                raise _DryRun
        except _DryRun:
            return report
    for step in steps:
        while True:
            with transaction(engine) as session:
                more = step(session)
            if not more:
                break
    return report


def dispatch_job(deps: Any, deliver: Callable[[], Awaitable[object]]) -> PeriodicJob:
    """The periodic job for `followup run`: a pass as of the clock's now, then delivery."""

    async def dispatch_and_deliver() -> None:
        now = deps.now()
        report = await asyncio.to_thread(dispatch_pass, deps.engine, deps.settings, now)
        if report.events:
            log.info("dispatch pass: %d messages, %d missed", report.messages, report.missed)
        await deliver()

    return PeriodicJob(
        "dispatch", dispatch_and_deliver, seconds=deps.settings.dispatch_interval_seconds
    )
