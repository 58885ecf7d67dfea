"""End to end through the sandbox: the quarterly check-in in chat."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot import checkin
from bot.deps import BotApp, Deps
from bot.replies import sender
from models.checkins import CheckIn, CheckInAnswer, current_answers
from models.db import transaction
from models.participants import participant_by_study_id
from models.reach import mark_unreachable
from models.tables import Alert, AuditEvent, Visit
from sandbox import Sandbox
from sandbox.state import BotMessage
from scheduler.clock import FrozenClock
from tests.checkin_chat import answer_shortest, data_for, linked_chat


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


async def test_pressed_question_shows_the_answer_and_loses_its_keyboard(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    await chat.press(first, "self")
    assert first.buttons == []
    assert first.text.endswith("→ 我是参与者本人")


async def test_english_participant_checks_in_in_english(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock, language="en")
    first = await chat.say("Start")
    assert first.text == "Who is answering today?"
    second = await chat.press(first, "self")
    assert second.text.startswith("Since the last check-in, have you stayed in hospital")
    assert [label for label, _ in second.buttons] == ["No", "Yes", "In hospital now", "« Back"]
    summary = await answer_shortest(chat, await chat.press(second, "~b"))
    assert summary.text.startswith("Please check your answers.")
    assert "Current treatment: Chemotherapy, Immunotherapy" in summary.text
    assert "Anything else: (skipped)" in summary.text
    thanks = await chat.press(summary, "~ok")
    assert thanks.text.startswith("Thank you. Your answers have been sent")


async def test_back_returns_to_the_previous_question(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    second = await chat.press(first, "proxy")
    assert "是否在世" in second.text
    again = await chat.press(second, "~b")
    assert "今天是谁在回答" in again.text
    assert second.buttons == []  # the keyboard of the question left behind is gone
    assert "✓ 家属或照护者" in [label for label, _ in again.buttons]
    third = await chat.press(again, "self")
    assert "住过院" in third.text
    with transaction(engine) as session:
        checkin = session.exec(select(CheckIn)).one()
        assert current_answers(session, checkin.id or 0) == {"respondent": "self"}


async def test_edit_from_the_summary_asks_new_follow_ups_then_returns(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    summary = await answer_shortest(chat, await chat.say("开始"))
    assert "2. 住院或急诊：没有" in summary.text
    hospital = await chat.press(summary, "~e2")
    assert "住过院" in hospital.text
    times = await chat.press(hospital, "yes")
    assert "几次" in times.text
    retry = await chat.say("很多")
    assert retry.text.startswith("请输入 1 到 50 之间的整数。")
    reason = await chat.say("２次")
    assert "原因" in reason.text
    await chat.settle()
    assert retry.buttons == []  # the question answered by typing lost its Back button
    summary = await chat.say("肺炎 <发烧> & 咳嗽")
    assert "住院或急诊：有" in summary.text and "次数：2" in summary.text
    assert "原因：肺炎 <发烧> & 咳嗽" in summary.text
    assert "&lt;发烧&gt; &amp; 咳嗽" in summary.html
    last = await chat.press(summary, "~b")
    assert "还有什么想告诉" in last.text
    summary = await chat.press(last, "~s")
    await chat.press(summary, "~ok")
    with transaction(engine) as session:
        checkin = session.exec(select(CheckIn)).one()
        answers = current_answers(session, checkin.id or 0)
        history = session.exec(select(CheckInAnswer).where(CheckInAnswer.item == "hospital")).all()
    assert answers["hospital"] == "yes" and answers["hospital_times"] == "2"
    assert [(a.value, a.current) for a in history] == [("no", False), ("yes", True)]


async def test_old_forged_and_foreign_buttons_change_nothing(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    other = await linked_chat(sandbox, engine, clock, "P002")
    first = await chat.say("开始")
    data = first.buttons[0][1]
    second = await chat.press(first, "self")
    sent = sandbox.sent_count()
    await sandbox.press(chat.user, first, data)  # an answered question's button, pressed again
    await sandbox.press(chat.user, second, data)  # an old step's data under a newer message
    await sandbox.press(chat.user, second, "ci:999999:1:self")  # no such check-in
    await sandbox.press(chat.user, second, "ci:1:2:died")  # not an option of this question
    await sandbox.press(other.user, second, second.buttons[0][1])  # someone else's question
    await sandbox.press(other.user, second, "checkin:open:1")  # someone else's visit
    stranger = sandbox.add_user()
    await sandbox.press(stranger, second, second.buttons[0][1])
    await chat.settle()
    answers = [sandbox.state.callback_answers[c].get("text") for c in sandbox.state.pressed[-7:]]
    assert answers[:3] == ["这个问题已经过去了。"] * 3
    assert answers[3] == "请点选下面的一个按钮。"
    assert answers[4:] == ["这个问题已经过去了。"] * 3
    assert sandbox.sent_count() == sent
    with transaction(engine) as session:
        checkin = session.exec(select(CheckIn).where(CheckIn.participant_id == 1)).one()
        assert current_answers(session, checkin.id or 0) == {"respondent": "self"}
        assert checkin.current_item == "hospital"


async def test_stickers_and_photos_get_a_polite_request(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    await chat.say("开始")
    await sandbox.send_other(chat.user, "sticker", {"file_id": "s1", "file_unique_id": "u1",
                             "type": "regular", "width": 1, "height": 1, "is_animated": False,
                             "is_video": False})  # fmt: skip
    reply = await chat.expect()
    assert reply.text.startswith("抱歉，这里只能识别按钮和文字")


async def test_ticks_survive_a_typed_message_and_none_clears_them(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    treatment = await chat.press(await chat.press(first, "self"), "no")
    await chat.press_only(treatment, "+radio")
    await chat.press_only(treatment, "+tcm")
    await sandbox.wait_until(lambda: ticked(treatment) == ["✓ 放疗（包括头部放疗）", "✓ 中药"])
    again = await chat.say("放疗")
    assert again.text.startswith("请点选下面的一个按钮。")
    assert ticked(again) == ["✓ 放疗（包括头部放疗）", "✓ 中药"]
    await chat.press_only(again, "+none")
    await sandbox.wait_until(lambda: ticked(again) == ["✓ 没有治疗"])
    await chat.press_only(again, "-none")
    await chat.press_only(again, "~d")
    answers = [sandbox.state.callback_answers[c].get("text") for c in sandbox.state.pressed]
    assert answers[-1] == "请至少选择一项，然后按“完成”。"


def ticked(message: BotMessage) -> list[str]:
    return [label for label, _ in message.buttons if label.startswith("✓")]


async def test_a_press_on_an_older_copy_of_a_question_ticks_and_never_unticks(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    """A question can reach the chat twice (a kill between sending and recording it). The
    copy without ticks says "tick": pressing it keeps the tick and redraws that copy."""
    chat = await linked_chat(sandbox, engine, clock)
    treatment = await chat.press(await chat.press(await chat.say("开始"), "self"), "no")
    tick_radio = data_for(treatment, "+radio")  # what the other, older copy still shows
    await chat.press_only(treatment, "+radio")
    await sandbox.wait_until(lambda: ticked(treatment) == ["✓ 放疗（包括头部放疗）"])
    assert data_for(treatment, "-radio")  # the ticked button now offers to untick
    await sandbox.press(chat.user, treatment, tick_radio)
    await chat.settle()
    assert ticked(treatment) == ["✓ 放疗（包括头部放疗）"]  # still ticked, not flipped off
    await chat.press_only(treatment, "~d")
    with transaction(engine) as session:
        checkin = session.exec(select(CheckIn)).one()
        assert checkin.id is not None
        assert current_answers(session, checkin.id)["treatment"] == "radio"


async def test_a_reply_handed_over_by_its_answer_is_sent_once_however_long_the_edit_waits(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The answer's transaction hands the next question over; the handler then answers the
    callback and edits the pressed message, which can wait in the rate limiter. Should that
    outlast the send lease, the periodic flush must not claim the question and send it too
    (the full-size chaos test found it sent twice, 0.2 s apart, with no kill between)."""
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    edit = checkin._edit_pressed
    flushed: list[int] = []

    async def slow_edit(query: Any, outcome: Any) -> None:
        clock.advance(dt.timedelta(seconds=bot.bot_data["deps"].settings.send_lease_seconds + 1))
        flushed.append(await sender(bot).flush())  # the periodic job, while the edit waits
        await edit(query, outcome)

    monkeypatch.setattr(checkin, "_edit_pressed", slow_edit)
    second = await chat.press(first, "self")
    await sender(bot).settled()
    assert flushed == [0]
    assert [m.text for m in sandbox.messages_to(chat.user.id)].count(second.text) == 1


async def test_an_unreachable_participant_who_presses_an_answer_is_reachable_and_answered(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    with transaction(engine) as session:  # Telegram refused a send since the question went out
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.id is not None
        assert mark_unreachable(session, participant_id=participant.id, now=clock(),
                                notify_chat_id=None, notice=str)  # fmt: skip
    await chat.press_only(first, "self")
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        alert = session.exec(select(Alert)).one()
        actions = session.exec(select(AuditEvent.action)).all()
        checkin_row = session.exec(select(CheckIn)).one()
        answers = current_answers(session, checkin_row.id or 0)
    assert participant is not None and not participant.unreachable
    assert (alert.kind, alert.status) == ("unreachable", "resolved")
    assert "participant.reachable" in actions
    assert answers == {"respondent": "self"}
    assert (await chat.expect()).text.startswith("自上次随访以来")  # the next question goes


async def test_an_answer_press_reads_no_participant_before_its_turn_but_typed_text_does(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The screens' read (bot.replies.screened_participant, through Deps.read) is skipped for a
    check-in answer: the turn locks and checks the participant itself."""
    reads = 0
    read = deps.read

    async def counted(work: Any) -> Any:
        nonlocal reads
        reads += 1
        return await read(work)

    monkeypatch.setattr(deps, "read", counted)
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    reads = 0
    await chat.press(first, "self")
    assert reads == 0
    again = await chat.say("开始")  # typed: both screens ask, and share one read
    assert reads == 1
    await chat.press(again, "no")
    assert reads == 1
