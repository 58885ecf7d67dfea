"""End to end through the sandbox: the quarterly check-in in chat."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.deps import BotApp
from models.checkins import CheckIn, CheckInAnswer, current_answers
from models.db import transaction
from models.tables import Visit
from sandbox import Sandbox
from scheduler.clock import FrozenClock
from tests.checkin_chat import answer_shortest, linked_chat


async def test_full_checkin_by_buttons_completes_the_visit(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    assert "今天是谁在回答" in first.text
    summary = await answer_shortest(chat, first)
    assert "请核对您的回答" in summary.text
    assert "化疗、免疫治疗" in summary.text
    thanks = await chat.press(summary, "~ok")
    assert thanks.text.startswith("谢谢您")
    assert sandbox.unanswered_callbacks() == []
    with transaction(engine) as session:
        visit = session.exec(select(Visit)).one()
        checkin = session.exec(select(CheckIn)).one()
        answers = current_answers(session, checkin.id or 0)
        rows = session.exec(select(CheckInAnswer)).all()
    assert visit.status == "completed" and visit.completion_mode == "chat"
    assert checkin.status == "completed"
    assert answers["treatment"] == "chemo;immuno"
    assert answers["anything_else"] == ""
    assert {r.respondent for r in rows} == {"self"}
    assert {r.instrument_version for r in rows} == {"checkin-v1"}
