"""Round trips of every export: CSV tables, REDCap against its own dictionary, FHIR re-read."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from followup.cli import app
from models import escalation
from models.checkins import finish_checkin, record_answer, start_checkin
from models.db import transaction
from models.participants import participant_by_study_id
from models.tables import Visit
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant, open_visit

runner = CliRunner()
TELEGRAM_USER = 987654321
ANSWERS = {
    "P001": {"respondent": "self", "hospital": "yes", "hospital_times": "2",
             "hospital_reason": "fever, \"high\"", "treatment": "chemo;immuno",
             "treatment_changed": "no", "progression": "unsure", "activity": "1",
             "cough_severity": "4", "haemoptysis": "no", "wellbeing": "7",
             "call_request": "yes", "anything_else": ""},
    "P002": {"respondent": "proxy", "vital_status": "died", "death_date": "2026-02"},
}  # fmt: skip


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", database_url)
    return database_url


@pytest.fixture
def study(env: str, engine: Engine, clock: FrozenClock) -> None:
    """Two check-ins (one complete, one a death report), an alert and a visit each."""
    for number, (study_id, answers) in enumerate(ANSWERS.items()):
        enroll_participant(engine, clock, study_id)
        visit_id = open_visit(engine, clock, study_id)
        with transaction(engine) as session:
            participant = participant_by_study_id(session, study_id)
            assert participant is not None
            participant.telegram_user_id = participant.telegram_chat_id = TELEGRAM_USER + number
            visit = session.get(Visit, visit_id)
            assert visit is not None
            checkin = start_checkin(session, visit=visit, instrument="checkin", version=1,
                                    now=clock())  # fmt: skip
            for item, value in answers.items():
                record_answer(session, checkin=checkin, item=item, value=value, raw=None,
                              respondent=answers["respondent"], now=clock())  # fmt: skip
            status = "completed" if study_id == "P001" else "death_reported"
            finish_checkin(session, checkin=checkin, visit=visit, status=status,  # type: ignore[arg-type]
                           now=clock())  # fmt: skip
            escalation.on_answer(session, participant=participant, checkin=checkin,
                                 answers=answers, now=clock())  # fmt: skip


def run(*args: str) -> str:
    result = runner.invoke(app, ["export", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    ("what", "first_column", "rows"),
    [("alerts", "alert_id", 2), ("consent", "study_id", 0), ("visits", "study_id", 2)],
)
def test_csv_tables_read_back_without_telegram_ids(
    study: None, what: str, first_column: str, rows: int
) -> None:
    text = run("--format", "csv", "--what", what)
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == rows
    assert text.startswith(first_column)
    assert str(TELEGRAM_USER) not in text


def test_alert_csv_records_tier_kind_and_rules_version(study: None) -> None:
    table = list(csv.DictReader(io.StringIO(run("--format", "csv", "--what", "alerts"))))
    assert {(r["study_id"], r["tier"], r["kind"], r["rules_version"]) for r in table} == {
        ("P001", "RED", "score", "rules-v1"), ("P002", "RED", "death_reported", "rules-v1")
    }  # fmt: skip


def test_redcap_export_fits_its_own_data_dictionary(study: None, tmp_path: Path) -> None:
    dictionary, data = tmp_path / "dictionary.csv", tmp_path / "data.csv"
    run("--format", "redcap", "--dictionary", str(dictionary), "--out", str(data))
    fields = {r["Variable / Field Name"]: r for r in csv.DictReader(dictionary.open())}
    rows = list(csv.DictReader(data.open(encoding="utf-8")))
    assert [(r["record_id"], r["redcap_event_name"]) for r in rows] == [
        ("P001", "visit_1_arm_1"), ("P002", "visit_1_arm_1")
    ]  # fmt: skip
    for row in rows:
        for column, value in row.items():
            if column in ("redcap_event_name", "checkin_complete") or value == "":
                continue
            name, _, code = column.partition("___")
            field = fields[name]
            choices = [
                c.split(",")[0].strip()
                for c in field["Choices, Calculations, OR Slider Labels"].split("|")
            ]
            if field["Field Type"] == "checkbox":
                assert code in choices and value in ("0", "1"), column
            elif field["Field Type"] == "radio":
                assert value in choices, (column, value)
            elif field["Text Validation Type OR Show Slider Number"] == "integer":
                low, high = field["Text Validation Min"], field["Text Validation Max"]
                assert int(low) <= int(value) <= int(high)
    p001 = rows[0]
    assert (p001["treatment___chemo"], p001["treatment___none"]) == ("1", "0")
    assert p001["hospital_reason"] == 'fever, "high"' and p001["checkin_complete"] == "2"
    assert rows[1]["death_date"] == "2026-02"
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in fields)
    assert str(TELEGRAM_USER) not in data.read_text(encoding="utf-8")


def test_fhir_bundle_reads_back_through_fhir_resources(study: None, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    run("--format", "fhir", "--out", str(out))
    bundle = Bundle.model_validate(json.loads(out.read_text(encoding="utf-8")))
    kinds = [e.resource.get_resource_type() for e in bundle.entry or []]  # type: ignore[union-attr]
    assert kinds == ["Questionnaire", "QuestionnaireResponse", "QuestionnaireResponse"]
    first = json.loads(out.read_text(encoding="utf-8"))["entry"][1]["resource"]
    assert first["subject"]["identifier"]["value"] == "P001"
    assert first["status"] == "completed"
    answers = {i["linkId"]: i["answer"] for i in first["item"]}
    assert [a["valueCoding"]["code"] for a in answers["treatment"]] == ["chemo", "immuno"]
    assert answers["hospital_times"] == [{"valueInteger": 2}]
    assert "anything_else" not in answers
    second = json.loads(out.read_text(encoding="utf-8"))["entry"][2]["resource"]
    assert second["status"] == "stopped"
    assert {"linkId": "death_date", "answer": [{"valueDate": "2026-02"}]} in second["item"]
    assert str(TELEGRAM_USER) not in out.read_text(encoding="utf-8")


def test_an_unknown_combination_is_refused(env: str) -> None:
    result = runner.invoke(app, ["export", "--format", "fhir", "--what", "alerts"])
    assert result.exit_code == 2
