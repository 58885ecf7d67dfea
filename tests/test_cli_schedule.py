"""`followup tick`, `followup visits` and `followup visit complete` against a real database."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from typer.testing import CliRunner

from followup.cli import app
from models.db import transaction
from models.tables import AuditEvent, OutboxMessage, Participant
from scheduler.clock import FrozenClock
from tests.test_dispatch import enrol_linked, purposes, visit_rows

runner = CliRunner()
DUE = "2026-04-15T10:00+08:00"


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", database_url)
    monkeypatch.delenv("FOLLOWUP_TELEGRAM_TOKEN", raising=False)
    monkeypatch.delenv("FOLLOWUP_COORDINATOR_CHAT_ID", raising=False)
    return database_url


def test_tick_dry_run_shows_what_it_would_send_and_changes_nothing(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    enrol_linked(engine, clock, enrolled_on=dt.date(2026, 1, 15))
    result = runner.invoke(app, ["tick", "--at", DUE, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "P001 visit 1: prompt" in result.output and "would queue 1 prompt" in result.output
    assert purposes(engine) == [] and visit_rows(engine) == []


def test_tick_queues_once_and_a_second_tick_finds_nothing(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    enrol_linked(engine, clock, enrolled_on=dt.date(2026, 1, 15))
    first = runner.invoke(app, ["tick", "--at", DUE, "--json"])
    second = runner.invoke(app, ["tick", "--at", DUE, "--json"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert json.loads(first.stdout)["sent"] == {"prompt": 1}
    assert json.loads(second.stdout)["sent"] == {}
    assert purposes(engine) == ["prompt:P001:1"]


def test_tick_refuses_an_instant_without_a_time_zone(env: str) -> None:
    result = runner.invoke(app, ["tick", "--at", "2026-04-15T10:00"])
    assert result.exit_code == 2 and "time zone" in result.output


def test_visits_lists_due_and_missed_as_json(env: str, engine: Engine, clock: FrozenClock) -> None:
    enrol_linked(engine, clock, "P001", enrolled_on=dt.date(2026, 1, 15))
    runner.invoke(app, ["tick", "--at", DUE])
    runner.invoke(app, ["tick", "--at", "2026-05-01T10:00+08:00"])
    missed = json.loads(runner.invoke(app, ["visits", "--missed", "--json"]).stdout)
    assert [(r["study_id"], r["visit"], r["status"]) for r in missed] == [("P001", 1, "missed")]
    everything = json.loads(runner.invoke(app, ["visits", "--json"]).stdout)
    assert len(everything) == len(visit_rows(engine))
    table = runner.invoke(app, ["visits"])
    assert table.exit_code == 0 and "P001" in table.output


def test_visit_complete_by_phone_stops_reminders_and_is_audited(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    enrol_linked(engine, clock, enrolled_on=dt.date(2026, 1, 15))
    runner.invoke(app, ["tick", "--at", DUE])
    result = runner.invoke(app, ["visit", "complete", "P001", "1", "--mode", "phone",
                                 "--note", "called, doing well"])  # fmt: skip
    assert result.exit_code == 0, result.output
    runner.invoke(app, ["tick", "--at", "2026-05-01T10:00+08:00"])
    assert purposes(engine) == ["prompt:P001:1"]
    visit = visit_rows(engine)[0]
    assert (visit.status, visit.completion_mode, visit.next_action_at) == ("completed", "phone",
                                                                           None)  # fmt: skip
    with transaction(engine) as session:
        actions = session.exec(select(AuditEvent.action)).all()
    assert "visit.completed" in actions
    again = runner.invoke(app, ["visit", "complete", "P001", "1", "--mode", "clinic"])
    assert again.exit_code == 1 and "already completed" in again.output
    bad = runner.invoke(app, ["visit", "complete", "P404", "1", "--mode", "phone"])
    assert bad.exit_code == 1 and "no visit" in bad.output


def test_two_tick_processes_at_once_queue_each_prompt_exactly_once(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    with transaction(engine) as session:
        for n in range(300):
            session.add(Participant(
                study_id=f"T{n:03d}", language="zh", timezone="Asia/Shanghai",
                enrolled_on=dt.date(2026, 1, 15), telegram_user_id=n + 1,
                telegram_chat_id=n + 1, created_at=clock(),
            ))  # fmt: skip
    runner.invoke(app, ["tick", "--at", "2026-02-01T10:00+08:00"])
    command = [str(Path(sys.executable).parent / "followup"), "tick", "--at", DUE, "--json"]
    environ = {**os.environ, "FOLLOWUP_DATABASE_URL": env}
    procs = [subprocess.Popen(command, env=environ, stdout=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    counts = [json.loads(o)["sent"].get("prompt", 0) for o in outputs]
    assert sum(counts) == 300
    with transaction(engine) as session:
        rows = session.exec(select(OutboxMessage.purpose).order_by(col(OutboxMessage.id))).all()
    assert len(rows) == len(set(rows)) == 300
