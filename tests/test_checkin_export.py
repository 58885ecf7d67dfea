"""`followup export --format csv`: one row per standing answer, labelled, without Telegram ids."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from bot import checkin_flow as flow
from bot.keyboards import CheckinButton
from followup.cli import app
from models.checkins import CheckIn
from models.db import transaction
from models.participants import participant_by_study_id
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant, open_visit

runner = CliRunner()
USER = 900001


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", database_url)
    monkeypatch.delenv("FOLLOWUP_TELEGRAM_TOKEN", raising=False)
    return database_url


class Driver:
    """Drive the check-in flow directly, as the handlers would, without Telegram."""

    def __init__(self, engine: Engine, clock: FrozenClock, user_id: int) -> None:
        self.engine, self.clock, self.user_id = engine, clock, user_id
        self.update_id = 0

    def _update(self) -> flow.Update:
        self.update_id += 1
        return flow.Update(self.user_id, self.update_id, self.clock(), "study office")

    def say(self, text: str) -> None:
        with transaction(self.engine) as session:
            assert flow.typed_text(session, self._update(), text).handled

    def press(self, code: str) -> None:
        with transaction(self.engine) as session:
            checkin = session.get(CheckIn, 1)
            assert checkin is not None and checkin.id is not None
            button = CheckinButton(checkin.id, checkin.step, code)
            outcome = flow.press_answer(session, self._update(), button)
        assert outcome.notice is None, outcome.notice


def linked(engine: Engine, clock: FrozenClock, study_id: str, user_id: int) -> None:
    enroll_participant(engine, clock, study_id)
    with transaction(engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None
        participant.telegram_user_id = participant.telegram_chat_id = user_id
        session.add(participant)
    open_visit(engine, clock, study_id)


def test_export_round_trip(env: str, engine: Engine, clock: FrozenClock, tmp_path: Path) -> None:
    linked(engine, clock, "P001", USER)
    chat = Driver(engine, clock, USER)
    chat.say("开始")
    for code in ["proxy", "alive", "yes"]:
        chat.press(code)
    chat.say("2")
    chat.say('咳嗽, "发烧"\n=1+1')
    chat.press("+chemo")
    chat.press("~d")
    clock.advance(dt.timedelta(days=1))
    chat.press("yes")  # treatment changed
    chat.press("side_effects")
    out = tmp_path / "answers.csv"
    result = runner.invoke(app, ["export", "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["study_id", "visit", "due_date", "instrument_version", "item",
                             "value", "value_label", "answered_at", "respondent", "mode",
                             "checkin_status"]  # fmt: skip
    by_item = {row["item"]: row for row in rows}
    assert [r["item"] for r in rows] == ["respondent", "vital_status", "hospital",
                                         "hospital_times", "hospital_reason", "treatment",
                                         "treatment_changed", "change_reason"]  # fmt: skip
    assert by_item["hospital_reason"]["value"] == '咳嗽, "发烧"\n=1+1'
    assert by_item["hospital_reason"]["value_label"] == ""
    assert by_item["treatment"]["value"] == "chemo"
    assert by_item["treatment"]["value_label"] == "Chemotherapy"
    assert by_item["change_reason"]["value_label"] == "Side effects"
    assert by_item["hospital_times"]["value"] == "2"
    assert {r["respondent"] for r in rows} == {"proxy"}
    assert {r["study_id"] for r in rows} == {"P001"}
    assert {(r["visit"], r["due_date"], r["instrument_version"], r["mode"]) for r in rows} == {
        ("1", "2026-02-25", "checkin-v1", "chat")}  # fmt: skip
    assert rows[0]["answered_at"] == "2026-03-02T02:00:00+00:00"
    assert str(USER) not in out.read_text(encoding="utf-8")

    since = runner.invoke(app, ["export", "--format", "csv", "--since", "2026-03-03"])
    assert since.exit_code == 0
    recent = list(csv.DictReader(since.stdout.splitlines()))
    assert [r["item"] for r in recent] == ["treatment_changed", "change_reason"]
    assert runner.invoke(app, ["export", "--format", "xml"]).exit_code == 2


def test_changed_answers_export_only_the_standing_one(
    env: str, engine: Engine, clock: FrozenClock
) -> None:
    linked(engine, clock, "P002", USER + 1)
    chat = Driver(engine, clock, USER + 1)
    chat.say("开始")
    chat.press("self")
    chat.press("~b")
    chat.press("proxy")
    result = runner.invoke(app, ["export", "--format", "csv"])
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [(r["item"], r["value"], r["respondent"]) for r in rows] == [
        ("respondent", "proxy", "proxy")]  # fmt: skip
