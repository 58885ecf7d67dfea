"""Row locks are taken once per transaction, and a RED worsening rule still reads the past.

A check-in answer locks its participant and check-in first; the hand-over of its reply checks
the same rows again. Within the transaction they are still locked, so those checks use the
objects this transaction holds (with its own changes) instead of reading them again. A new
transaction reads afresh.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from messages import alert_rules
from models import escalation
from models.checkins import CheckIn, CheckInStatus, current_answers, record_answer, start_checkin
from models.db import transaction
from models.locks import (
    current_checkin,
    lock_participant,
    lock_participant_by_user,
    lock_participants,
    locked_checkin_with_visit,
)
from models.tables import Alert, Participant, Visit
from scheduler.clock import FrozenClock
from study.alert_rules import RED
from tests.factories import linked_participant, open_visit


@contextmanager
def counting(engine: Engine, *, selects_only: bool = True) -> Iterator[list[str]]:
    """The SELECT statements (or all statements) run while the block is open."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not selects_only or statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def locked_checkin(session: Session, checkin_id: int) -> CheckIn | None:
    found = locked_checkin_with_visit(session, checkin_id)
    return found[0] if found is not None else None


def test_a_participant_locked_once_is_not_read_again_in_the_same_transaction(
    engine: Engine, clock: FrozenClock
) -> None:
    first = linked_participant(engine, clock, "P001", 4101)
    second = linked_participant(engine, clock, "P002", 4102)
    with transaction(engine) as session, counting(engine) as selects:
        held = lock_participant_by_user(session, 4101)
        assert held is not None and held.id == first
        held.unreachable = True  # this transaction's own change, not yet flushed
        both = lock_participants(session, {first, second})
        again = lock_participant(session, first)
    # One SELECT for the first lock; the second reads only the participant not yet held.
    assert len(selects) == 2
    assert both[first] is held and again is held and both[first].unreachable
    assert both[second].id == second
    with transaction(engine) as session:  # another transaction changes the row meanwhile
        other = session.get(Participant, first)
        assert other is not None
        other.unreachable = False
        session.add(other)
    with transaction(engine) as session, counting(engine) as selects:
        fresh = lock_participants(session, {first})
    assert len(selects) == 1 and not fresh[first].unreachable  # a new transaction reads afresh


def _checkin(engine: Engine, clock: FrozenClock, study_id: str, number: int = 1,
             due: dt.date = dt.date(2026, 2, 25)) -> int:  # fmt: skip
    visit_id = open_visit(engine, clock, study_id, number=number, due_date=due,
                          window_closes_on=due + dt.timedelta(days=28))  # fmt: skip
    with transaction(engine) as session:
        visit = session.get(Visit, visit_id)
        assert visit is not None
        checkin = start_checkin(session, visit=visit, instrument="checkin", version=1,
                                now=clock())  # fmt: skip
        assert checkin.id is not None
        return checkin.id


def test_a_check_in_locked_once_is_current_for_the_rest_of_the_transaction(
    engine: Engine, clock: FrozenClock
) -> None:
    linked_participant(engine, clock, "P001", 4101)
    checkin_id = _checkin(engine, clock, "P001")
    with transaction(engine) as session, counting(engine) as selects:
        found = locked_checkin_with_visit(session, checkin_id)
        assert found is not None
        checkin, visit = found
        checkin.step += 1  # as the turn moves it on, before anything is flushed
        assert locked_checkin_with_visit(session, checkin_id) == (checkin, visit)
        assert session.get(Visit, checkin.visit_id) is visit
        current = current_checkin(session, checkin_id)
    # One SELECT in all: the check-in with its visit, both answered from the session after.
    assert len(selects) == 1 and current is checkin and current.step == checkin.step
    with transaction(engine) as session, counting(engine) as selects:
        unlocked = current_checkin(session, checkin_id)  # not locked here: read afresh
    assert len(selects) == 1 and unlocked is not None and unlocked.step == 1


@pytest.mark.parametrize("tier", ["AMBER", RED])
def test_a_red_worsening_rule_reads_the_previous_check_in_and_an_amber_one_waits(
    engine: Engine, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, tier: str
) -> None:
    """An answer looks at the previous check-in only when worsening is RED: AMBER alerts wait
    for the submission (escalation.on_submit), so under the shipped rules it saves the query."""
    rules = dataclasses.replace(alert_rules.current(), worsening_tier=tier)
    monkeypatch.setattr(alert_rules, "current", lambda: rules)
    item = rules.worsening_items[0]
    participant_id = linked_participant(engine, clock, "P001", 4101)
    earlier = _checkin(engine, clock, "P001")
    with transaction(engine) as session:
        checkin = locked_checkin(session, earlier)
        assert checkin is not None
        record_answer(session, checkin=checkin, item=item, value="0", raw="0",
                      respondent="self", now=clock(), replaces=False)  # fmt: skip
        checkin.status = CheckInStatus.COMPLETED
        session.add(checkin)
    clock.advance(dt.timedelta(days=90))
    later = _checkin(engine, clock, "P001", number=2, due=dt.date(2026, 5, 25))
    with transaction(engine) as session, counting(engine) as selects:
        participant = lock_participant(session, participant_id)
        checkin = locked_checkin(session, later)
        assert participant is not None and checkin is not None
        before = len(selects)
        raised = escalation.on_answer(session, participant=participant, checkin=checkin,
                                      answers={item: "2"}, now=clock())  # fmt: skip
        reads = len(selects) - before
    with transaction(engine) as session:
        alerts = session.exec(select(Alert.tier, Alert.kind)).all()
        assert current_answers(session, earlier) == {item: "0"}
    if tier == RED:
        assert alerts == [(RED, "worsening")] and reads >= 1
        assert raised  # the emergency text goes with it
    else:
        assert alerts == [] and reads == 0 and raised == []


def test_each_transaction_starts_with_no_locks_held(engine: Engine, clock: FrozenClock) -> None:
    participant_id = linked_participant(engine, clock, "P001", 4101)
    with transaction(engine) as session:
        lock_participant(session, participant_id)
    with Session(engine) as session, counting(engine) as selects:
        lock_participant(session, participant_id)
    assert len(selects) == 1


def test_a_commit_inside_a_session_forgets_its_locks(engine: Engine, clock: FrozenClock) -> None:
    """The memory ends with the transaction, however it ends: a session that commits and goes
    on locks (and reads) the row again."""
    participant_id = linked_participant(engine, clock, "P001", 4101)
    checkin_id = _checkin(engine, clock, "P001")
    with Session(engine) as session, counting(engine) as selects:
        lock_participant(session, participant_id)
        locked_checkin(session, checkin_id)
        session.commit()
        lock_participant(session, participant_id)
        locked_checkin(session, checkin_id)
        session.rollback()
        lock_participant(session, participant_id)
    assert len(selects) == 5
