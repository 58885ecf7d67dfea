"""The coordinator's path: `followup withdraw`, `followup consent` and re-consent."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from typer.testing import CliRunner

from followup.cli import app
from models.consent import ConsentEvent
from models.db import transaction
from models.participants import participant_by_study_id
from models.tables import Alert, OutboxMessage, Participant, Visit
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant

runner = CliRunner()
TELEGRAM_USER = 987654321


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", database_url)
    monkeypatch.setenv("FOLLOWUP_COORDINATOR_CHAT_ID", "-100777")
    monkeypatch.delenv("FOLLOWUP_TELEGRAM_TOKEN", raising=False)
    return database_url


def _enrolled_and_linked(engine: Engine, clock: FrozenClock, *, biospecimen: bool) -> None:
    enroll_participant(engine, clock, "P001", biospecimen=biospecimen)
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.id is not None
        participant.telegram_user_id = participant.telegram_chat_id = TELEGRAM_USER
        session.add(participant)
        session.add(Visit(participant_id=participant.id, number=1, status="planned",
                          due_date=dt.date(2026, 4, 15), window_closes_on=dt.date(2026, 5, 1),
                          created_at=clock()))  # fmt: skip


def _participant(engine: Engine) -> Participant:
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None
        return participant


def test_coordinator_withdrawal_has_the_same_effect_and_audit(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    _enrolled_and_linked(engine, clock, biospecimen=True)
    no_choice = runner.invoke(app, ["withdraw", "P001", "--scope", "biospecimen"])
    assert no_choice.exit_code == 1 and "destroy or keep" in no_choice.output
    kept = runner.invoke(app, ["withdraw", "P001", "--scope", "biospecimen", "--samples", "keep",
                               "--reason", "asked by phone"])  # fmt: skip
    assert kept.exit_code == 0, kept.output
    study = runner.invoke(app, ["withdraw", "P001", "--scope", "study", "--channel", "in_person"])
    assert study.exit_code == 0, study.output
    assert "1 visit(s) cancelled" in study.output
    again = runner.invoke(app, ["withdraw", "P001", "--scope", "contact"])
    assert again.exit_code == 1
    participant = _participant(engine)
    assert (participant.status, participant.chat_contact, participant.biospecimen) == (
        "withdrawn", False, False)  # fmt: skip
    with transaction(engine) as session:
        events = session.exec(select(ConsentEvent).order_by(col(ConsentEvent.id))).all()
        purposes = session.exec(select(OutboxMessage.purpose)).all()
        alerts = session.exec(select(Alert.kind)).all()
        visit = session.exec(select(Visit)).one()
    assert [(e.scope, e.actor, e.channel, e.samples, e.note) for e in events] == [
        ("biospecimen", "coordinator", "phone", "keep", "asked by phone"),
        ("study", "coordinator", "in_person", None, None),
    ]
    assert sorted(p.split(":")[0] for p in purposes) == [
        "alert", "alert", "withdrawal-confirmation", "withdrawal-confirmation"]  # fmt: skip
    assert list(alerts) == ["withdrawal", "withdrawal"]
    assert visit.status == "cancelled"


def test_consent_history_and_re_consent_by_a_coordinator_with_a_note(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    _enrolled_and_linked(engine, clock, biospecimen=False)
    assert runner.invoke(app, ["withdraw", "P001", "--scope", "study"]).exit_code == 0
    missing = runner.invoke(app, ["consent", "restore", "P001", "--scope", "study"])
    assert missing.exit_code == 2  # --note is mandatory
    blank = runner.invoke(app, ["consent", "restore", "P001", "--scope", "study", "--note", " "])
    assert blank.exit_code == 1
    wrong = runner.invoke(app, ["consent", "restore", "P001", "--scope", "contact",
                                "--note", "x"])  # fmt: skip
    assert wrong.exit_code == 1  # chat contact needs the study first
    restored = runner.invoke(app, ["consent", "restore", "P001", "--scope", "study",
                                   "--note", "re-consented at clinic visit"])  # fmt: skip
    assert restored.exit_code == 0, restored.output
    participant = _participant(engine)
    assert (participant.status, participant.chat_contact) == ("active", True)
    history = runner.invoke(app, ["consent", "P001"])
    assert history.exit_code == 0, history.output
    assert "in study yes, chat contact yes" in history.output
    shown = json.loads(runner.invoke(app, ["consent", "P001", "--json"]).output)
    assert [(e["change"], e["scope"], e["note"]) for e in shown["events"]] == [
        ("withdraw", "study", None),
        ("restore", "study", "re-consented at clinic visit"),
    ]
    assert runner.invoke(app, ["consent", "P404"]).exit_code == 1


def test_audit_export_in_both_formats_holds_study_ids_not_telegram_ids(
    env: str, engine: Engine, clock: FrozenClock, tmp_path: object
) -> None:
    _enrolled_and_linked(engine, clock, biospecimen=False)
    assert runner.invoke(app, ["withdraw", "P001", "--scope", "contact"]).exit_code == 0
    jsonl = runner.invoke(app, ["audit", "export", "--format", "jsonl"])
    assert jsonl.exit_code == 0, jsonl.output
    rows = [json.loads(line) for line in jsonl.output.splitlines()]
    assert "consent.withdrawn" in [r["action"] for r in rows]
    assert all(r["entity_id"] == "P001" for r in rows if r["entity"] == "participant")
    csv_out = runner.invoke(app, ["audit", "export"])
    assert csv_out.output.splitlines()[0].startswith("id,at,actor,action")
    assert len(csv_out.output.strip().splitlines()) == len(rows) + 1
    assert str(TELEGRAM_USER) not in jsonl.output + csv_out.output
    verify = runner.invoke(app, ["audit", "verify"])
    assert verify.exit_code == 0 and f"{len(rows)} rows" in verify.output
