"""`followup alerts`, `alert ack|resolve`, `participant` and `death confirm|reject`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from followup.cli import app
from messages import alert_rules
from models import escalation, outbox
from models.db import transaction
from models.participants import participant_by_study_id
from models.tables import Alert, AuditEvent, OutboxMessage, Visit
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant, open_visit

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", database_url)
    monkeypatch.delenv("FOLLOWUP_COORDINATOR_CHAT_ID", raising=False)
    return database_url


def emergency_alert(engine: Engine, clock: FrozenClock, study_id: str = "P001") -> None:
    enroll_participant(engine, clock, study_id)
    with transaction(engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None
        escalation.on_message(session, participant=participant, text="胸痛", update_id=1,
                              now=clock(), send_text=False)  # fmt: skip


def test_alerts_lists_open_ones_as_json_without_telegram_ids(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    emergency_alert(engine, clock)
    result = runner.invoke(app, ["alerts", "--open", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["id"], row["tier"], row["status"], row["study_id"]) == (1, "RED", "open", "P001")
    table = runner.invoke(app, ["alerts"])
    assert "P001" in table.stdout and "emergency_phrase" in table.stdout


def test_ack_then_resolve_with_a_note_is_audited_and_a_second_ack_changes_nothing(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    emergency_alert(engine, clock)
    assert runner.invoke(app, ["alert", "ack", "1"]).exit_code == 0
    again = runner.invoke(app, ["alert", "ack", "1"])
    assert again.exit_code == 1 and "already acknowledged" in again.output
    done = runner.invoke(app, ["alert", "resolve", "1", "--note", "called, fine"])
    assert done.exit_code == 0, done.output
    with transaction(engine) as session:
        alert = session.exec(select(Alert)).one()
        actions = session.exec(select(AuditEvent.action)).all()
    assert (alert.status, alert.resolution_note, alert.resolved_by) == (
        "resolved", "called, fine", "coordinator:cli"
    )  # fmt: skip
    assert alert.next_notice_at is None
    assert {"alert.acknowledged", "alert.resolved"} <= set(actions)
    assert runner.invoke(app, ["alert", "ack", "99"]).exit_code == 1
    assert runner.invoke(app, ["alerts", "--open", "--json"]).stdout.strip() == "[]"


def test_participant_shows_the_timeline(env: str, engine: Engine, clock: FrozenClock) -> None:
    emergency_alert(engine, clock)
    open_visit(engine, clock)
    result = runner.invoke(app, ["participant", "P001"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "visit 1" in result.stdout and "RED emergency_phrase" in result.stdout
    assert runner.invoke(app, ["participant", "NOPE"]).exit_code == 1


def reported_dead(engine: Engine, clock: FrozenClock) -> None:
    """A proxy's death report: status, a RED alert, an open visit and an unsent message."""
    enroll_participant(engine, clock)
    open_visit(engine, clock)
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None
        participant.status = "death_reported"
        participant.telegram_chat_id = 4242
        session.add(participant)
        escalation.raise_escalation(
            session, participant=participant, tier="RED", kind="death_reported", hits=[],
            key="checkin:1:death_reported", rules=alert_rules.current(), now=clock(),
        )  # fmt: skip
        outbox.enqueue(session, purpose="reminder1:P001:1", chat_id=4242, text="x",
                       participant_id=participant.id, now=clock())  # fmt: skip


def test_confirming_a_death_stops_all_contact_for_good(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    reported_dead(engine, clock)
    result = runner.invoke(app, ["death", "confirm", "P001"])
    assert result.exit_code == 0, result.output
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        visits = session.exec(select(Visit)).all()
        messages = session.exec(select(OutboxMessage)).all()
        alert = session.exec(select(Alert)).one()
        actions = session.exec(select(AuditEvent.action)).all()
    assert participant is not None and participant.status == "deceased"
    assert {v.status for v in visits} == {"cancelled"}
    assert {m.status for m in messages} == {"cancelled"}
    assert alert.status == "resolved"
    assert "participant.death_confirmed" in actions
    assert runner.invoke(app, ["death", "reject", "P001"]).exit_code == 1


def test_rejecting_a_death_report_makes_the_participant_active_again(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    reported_dead(engine, clock)
    result = runner.invoke(app, ["death", "reject", "P001", "--note", "wrong person"])
    assert result.exit_code == 0, result.output
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        alert = session.exec(select(Alert)).one()
        actions = session.exec(select(AuditEvent.action)).all()
    assert participant is not None and participant.status == "active"
    assert (alert.status, alert.resolution_note) == ("resolved", "wrong person")
    assert "participant.death_rejected" in actions
    assert runner.invoke(app, ["death", "reject", "P001"]).exit_code == 1
