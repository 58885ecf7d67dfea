"""A new questionnaire version while check-ins under the old one are still open."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import select

from messages import instruments
from models.checkins import CheckIn, CheckInAnswer
from models.db import transaction
from scheduler.clock import FrozenClock
from tests.test_checkin_export import USER, Driver, linked


@pytest.fixture
def version_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """checkin-v2: version 1 with one more question at the start, in both languages."""
    for path in instruments.QUESTIONNAIRES.glob("checkin-v1*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    definition = yaml.safe_load((tmp_path / "checkin-v1.yaml").read_text(encoding="utf-8"))
    definition["version"] = 2
    definition["items"].insert(0, {"id": "consent_ok", "type": "single", "options": ["ok"]})
    (tmp_path / "checkin-v2.yaml").write_text(yaml.safe_dump(definition), encoding="utf-8")
    for language in ("zh", "en"):
        words = yaml.safe_load((tmp_path / f"checkin-v1.{language}.yaml").read_text("utf-8"))
        words["items"]["consent_ok"] = {"question": "v2?", "short": "v2", "options": {"ok": "OK"}}
        (tmp_path / f"checkin-v2.{language}.yaml").write_text(
            yaml.safe_dump(words, allow_unicode=True), encoding="utf-8"
        )
    monkeypatch.setattr(instruments, "QUESTIONNAIRES", tmp_path)
    yield
    instruments.definition.cache_clear()
    instruments.texts.cache_clear()


def test_open_checkins_keep_their_version_and_new_ones_get_the_new_one(
    engine: Engine, clock: FrozenClock, request: pytest.FixtureRequest
) -> None:
    linked(engine, clock, "P001", USER)
    old = Driver(engine, clock, USER)
    old.say("开始")
    old.press("self")
    request.getfixturevalue("version_2")
    assert instruments.latest().version == 2
    assert instruments.missing_texts(2, "zh") == []
    linked(engine, clock, "P002", USER + 1)
    new = Driver(engine, clock, USER + 1)
    new.say("开始")
    old.press("no")  # the old check-in goes on under version 1: hospital comes next
    with transaction(engine) as session:
        versions = {c.participant_id: c.version for c in session.exec(select(CheckIn)).all()}
        answers = [(a.item, a.instrument_version) for a in session.exec(select(CheckInAnswer))]
        second = session.exec(select(CheckIn).where(CheckIn.participant_id == 2)).one()
    assert versions == {1: 1, 2: 2}
    assert answers == [("respondent", "checkin-v1"), ("hospital", "checkin-v1")]
    assert second.current_item == "consent_ok"
