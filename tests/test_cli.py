"""The operator's `followup` command against a real database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from typer.testing import CliRunner

from followup.cli import app
from models.db import transaction
from models.participants import participant_by_study_id
from models.tables import Invite
from study.invites import hash_token

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", database_url)
    monkeypatch.setenv("FOLLOWUP_BOT_USERNAME", "pumch_followup_bot")
    monkeypatch.delenv("FOLLOWUP_TELEGRAM_TOKEN", raising=False)
    return database_url


def test_init_is_idempotent(env: str) -> None:
    first = runner.invoke(app, ["init"])
    second = runner.invoke(app, ["init"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "schema at" in second.output


def test_enroll_prints_a_deep_link_as_json_and_stores_only_the_hash(
    env: str, engine: Engine
) -> None:
    result = runner.invoke(
        app, ["enroll", "P001", "--enrolled-on", "2026-01-15", "--language", "en", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["study_id"] == "P001"
    assert payload["link"] == f"https://t.me/pumch_followup_bot?start={payload['token']}"
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.language == "en"
        invites = session.exec(select(Invite)).all()
    assert [i.token_hash for i in invites] == [hash_token(payload["token"])]


def test_enroll_refuses_a_duplicate_study_id_and_a_bad_language(env: str) -> None:
    assert runner.invoke(app, ["enroll", "P001", "--enrolled-on", "2026-01-15"]).exit_code == 0
    again = runner.invoke(app, ["enroll", "P001", "--enrolled-on", "2026-01-15"])
    assert again.exit_code == 1 and "already enrolled" in again.output
    bad = runner.invoke(app, ["enroll", "P002", "--enrolled-on", "2026-01-15", "--language", "fr"])
    assert bad.exit_code == 2
    zone = runner.invoke(
        app, ["enroll", "P003", "--enrolled-on", "2026-01-15", "--timezone", "X/Y"]
    )
    assert zone.exit_code == 2 and "timezone" in zone.output


def test_invite_issues_a_fresh_token_and_revokes_the_old(env: str, engine: Engine) -> None:
    runner.invoke(app, ["enroll", "P001", "--enrolled-on", "2026-01-15", "--json"])
    result = runner.invoke(app, ["invite", "P001", "--json"])
    assert result.exit_code == 0, result.output
    with transaction(engine) as session:
        invites = session.exec(select(Invite).order_by(col(Invite.id))).all()
    assert len(invites) == 2
    assert invites[0].revoked_at is not None and invites[1].revoked_at is None
    assert runner.invoke(app, ["invite", "NOPE"]).exit_code == 1


def test_participants_lists_status_and_linking(env: str) -> None:
    runner.invoke(app, ["enroll", "P002", "--enrolled-on", "2026-01-15", "--biospecimen"])
    runner.invoke(app, ["enroll", "P001", "--enrolled-on", "2026-01-16"])
    rows = json.loads(runner.invoke(app, ["participants", "--json"]).stdout)
    assert [(r["study_id"], r["status"], r["linked"], r["biospecimen"]) for r in rows] == [
        ("P001", "active", False, False),
        ("P002", "active", False, True),
    ]
    table = runner.invoke(app, ["participants"])
    assert "P001" in table.output and "linked" in table.output


def test_run_refuses_without_a_token_or_with_a_malformed_one(
    env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = runner.invoke(app, ["run"])
    assert missing.exit_code == 2 and "FOLLOWUP_TELEGRAM_TOKEN is not set" in missing.output
    monkeypatch.setenv("FOLLOWUP_TELEGRAM_TOKEN", "not-a-token")
    malformed = runner.invoke(app, ["run"])
    assert malformed.exit_code == 2 and "malformed" in malformed.output
    assert "not-a-token" not in malformed.output


def test_a_bad_setting_is_named(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_TIMEZONE", "Nowhere/Town")
    result = runner.invoke(app, ["participants"])
    assert result.exit_code == 2 and "FOLLOWUP_TIMEZONE" in result.output


def test_run_refuses_a_malformed_listen_address(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_TELEGRAM_TOKEN", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0")
    result = runner.invoke(app, ["run", "--webhook", "https://x.example/tg", "--listen", "8443"])
    assert result.exit_code == 2 and "--listen must be HOST:PORT" in result.output
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0" not in result.output
