"""The check-in across restarts, closed windows, and a caregiver reporting a death."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot import checkin_flow as flow
from bot.deps import BotApp, Deps
from bot.keyboards import CheckinButton
from bot.replies import sender
from bot.runtime import running
from messages.render import render
from models.checkins import CheckIn, CheckInAnswer, current_answers, death_reports
from models.db import transaction
from models.deaths import decide_death
from models.participants import participant_by_study_id
from models.tables import AuditEvent, OutboxMessage, Visit
from sandbox import Sandbox
from sandbox.faults import Fault
from sandbox.state import plain_text
from scheduler.clock import FrozenClock
from study.contact import may_message
from tests.checkin_chat import Chat, answer_shortest, data_for, linked_chat
from tests.test_checkin_export import USER, Driver, linked
from tests.test_locks import counting
from tests.test_schedule_e2e import sent_rows_settled


async def test_checkin_resumes_at_the_same_question_after_a_restart(
    sandbox: Sandbox, deps: Deps, engine: Engine, clock: FrozenClock
) -> None:
    deps.settings = deps.settings.model_copy(update={"telegram_api_url": sandbox.api_url})
    async with running(deps, token=sandbox.token, poll_timeout=5, with_scheduler=False):
        chat = await linked_chat(sandbox, engine, clock)
        first = await chat.say("开始")
        vital = await chat.press(first, "proxy")
        hospital = await chat.press(vital, "alive")
    clock.advance(dt.timedelta(days=2))
    async with running(deps, token=sandbox.token, poll_timeout=5, with_scheduler=False):
        again = await chat.say("开始")
        assert again.text == hospital.text
        assert "参与者是否住过院" in again.text  # worded for the family member answering
        times = await chat.press(again, "yes")
        assert sandbox.state.callback_answers[sandbox.state.pressed[-1]].get("text") is None
    async with running(deps, token=sandbox.token, poll_timeout=5, with_scheduler=False):
        reason = await chat.say("1")
        assert "原因" in reason.text and "几次" in times.text
    with transaction(engine) as session:
        rows = session.exec(select(CheckInAnswer).order_by(CheckInAnswer.id)).all()  # type: ignore[arg-type]
    assert [(r.item, r.value, r.respondent) for r in rows] == [
        ("respondent", "proxy", "proxy"), ("vital_status", "alive", "proxy"),
        ("hospital", "yes", "proxy"), ("hospital_times", "1", "proxy"),
    ]  # fmt: skip


async def test_caregiver_reports_a_death_and_nothing_more_is_asked(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    vital = await chat.press(first, "proxy")
    when = await chat.press(vital, "died")
    assert "深感难过" in when.text
    leftover = when.buttons[-1][1]
    assert leftover.endswith("~b")
    future = await chat.say("2026-05")
    assert future.text.startswith("日期不能晚于今天")
    early = await chat.say("2025年12月")
    assert early.text.startswith("日期不能早于加入研究的日期（2026-01-15）")
    condolence = await chat.say("2026年2月")
    assert condolence.text == plain_text(
        render("checkin_condolence", "zh", team_contact=deps.settings.team_contact)
    )
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None
        assert participant.status == "death_reported" and not may_message(participant)
        ((reported, checkin),) = death_reports(session)
        assert reported.study_id == "P001" and checkin.status == "death_reported"
        assert current_answers(session, checkin.id or 0) == {
            "respondent": "proxy", "vital_status": "died", "death_date": "2026-02"}  # fmt: skip
        assert session.exec(select(Visit)).one().status == "completed"
        actions = session.exec(select(AuditEvent.action)).all()
    assert "participant.death_reported" in actions
    await sandbox.send_text(chat.user, "开始")  # no more questions, and no prompt either
    assert when.buttons == []  # answered by typing: its Back button is gone
    await sandbox.press(chat.user, when, leftover)  # pressed anyway, from a stale screen
    await chat.settle()  # one chat's updates run in order: the text was handled before this
    assert len(sandbox.messages_to(chat.user.id)) == chat.seen


async def _death_reported_while_the_condolence_fails(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> tuple[Chat, int]:
    """A proxy reports a death; Telegram fails the condolence once (502). Its outbox row id."""
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    vital = await chat.press(first, "proxy")
    await chat.press(vital, "died")
    refused = Fault("502", method="sendMessage", chat_id=chat.user.id, times=1)
    sandbox.faults.append(refused)
    await sandbox.send_text(chat.user, "2026年2月")
    await sandbox.wait_until(lambda: refused.fired == 1)
    await sent_rows_settled(bot)
    with transaction(engine) as session:
        (row,) = session.exec(
            select(OutboxMessage).where(col(OutboxMessage.purpose).endswith(":condolence"))
        ).all()
        assert (row.status, row.attempts) == ("pending", 1)  # kept, to be sent again
        assert row.id is not None
        return chat, row.id


async def test_a_condolence_telegram_failed_to_deliver_is_sent_again(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    chat, _ = await _death_reported_while_the_condolence_fails(bot, sandbox, engine, clock)
    assert await sender(bot).flush() == 0  # backing off: not due yet
    clock.advance(dt.timedelta(minutes=1))
    assert await sender(bot).flush() == 1
    condolence = await chat.expect()
    assert condolence.text == plain_text(
        render("checkin_condolence", "zh", team_contact=deps.settings.team_contact)
    )
    clock.advance(dt.timedelta(hours=1))
    assert await sender(bot).flush() == 0  # once: nothing else goes while the report waits
    assert len(sandbox.messages_to(chat.user.id)) == chat.seen


@pytest.mark.parametrize("confirm", [True, False], ids=["confirmed", "corrected"])
async def test_a_condolence_not_yet_sent_never_goes_once_a_coordinator_decides(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, confirm: bool
) -> None:
    chat, row_id = await _death_reported_while_the_condolence_fails(bot, sandbox, engine, clock)
    with transaction(engine) as session:
        decision = decide_death(session, study_id="P001", confirm=confirm, by="coordinator:1",
                                now=clock())  # fmt: skip
    assert decision.cancelled_messages == 1
    clock.advance(dt.timedelta(hours=1))
    assert await sender(bot).flush() == 0
    with transaction(engine) as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None and row.status == "cancelled"
    assert len(sandbox.messages_to(chat.user.id)) == chat.seen


async def test_start_after_completion_or_after_the_window_closed(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    summary = await answer_shortest(chat, first)
    await chat.press(summary, "~ok")
    await sandbox.press(chat.user, first, "checkin:open:1")
    done = await chat.expect()
    assert done.text == plain_text(render("checkin_already_done", "zh"))
    later = await linked_chat(sandbox, engine, clock, "P002")
    await later.say("开始")
    clock.set(dt.datetime(2026, 3, 25, 16, 0, tzinfo=dt.UTC))  # 26 March in Shanghai
    await sandbox.press(later.user, sandbox.messages_to(later.user.id)[-1], "checkin:open:2")
    closed = await later.expect()
    assert closed.text == plain_text(render("checkin_closed", "zh"))
    fallback = await later.say("开始")
    assert fallback.text == plain_text(render("fallback", "zh"))
    with transaction(engine) as session:
        statuses = {c.participant_id: c.status for c in session.exec(select(CheckIn)).all()}
    assert statuses == {1: "completed", 2: "in_progress"}


async def test_the_schedules_prompt_button_opens_the_checkin_and_submitting_stops_reminders(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    from bot.replies import sender
    from scheduler.dispatch import dispatch_pass
    from tests.test_schedule_e2e import sent_rows_settled

    chat = await linked_chat(sandbox, engine, clock, with_visit=False)
    await sent_rows_settled(bot)  # before travelling in time past the greeting's send lease
    clock.set(dt.datetime(2026, 4, 15, 2, tzinfo=dt.UTC))  # the 3-month prompt, 10:00 Beijing
    dispatch_pass(deps.engine, deps.settings, clock())
    await sender(bot).flush()
    prompt = await chat.expect()
    ((_label, data),) = prompt.buttons
    assert data.startswith("checkin:open:")
    await sandbox.press(chat.user, prompt, data)
    first = await chat.expect()
    assert "今天是谁在回答" in first.text
    summary = await answer_shortest(chat, first)
    await chat.press(summary, "~ok")
    await sent_rows_settled(bot)
    clock.set(dt.datetime(2026, 4, 18, 2, tzinfo=dt.UTC))  # when the first reminder would go
    dispatch_pass(deps.engine, deps.settings, clock())
    assert await sender(bot).flush() == 0
    await sandbox.press(chat.user, prompt, data)  # the prompt's button, after submitting
    assert (await chat.expect()).text == plain_text(render("checkin_already_done", "zh"))


async def test_a_failed_send_or_edit_loses_no_answer(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    from bot.replies import sender
    from sandbox.faults import Fault
    from tests.test_schedule_e2e import sent_rows_settled

    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    sandbox.faults.append(Fault("502", method="editMessageText", chat_id=chat.user.id))
    hospital = await chat.press(
        first, "self"
    )  # the edit fails; the answer and next question stand
    assert "住过院" in hospital.text and first.buttons
    refused = Fault("502", method="sendMessage", chat_id=chat.user.id)
    sandbox.faults.append(refused)
    await chat.press_only(hospital, "no")  # stored, but the next question's send fails
    await sandbox.wait_until(lambda: refused.fired == 1)
    await sent_rows_settled(bot)
    with transaction(engine) as session:
        checkin = session.exec(select(CheckIn)).one()
        assert current_answers(session, checkin.id or 0) == {"respondent": "self",
                                                             "hospital": "no"}  # fmt: skip
    clock.advance(dt.timedelta(minutes=1))  # past the retry back-off
    assert await sender(bot).flush() == 1
    treatment = await chat.expect()
    assert "抗癌治疗" in treatment.text


async def test_a_replayed_tick_redraws_the_keyboard_a_crash_may_have_lost(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    """Found by the chaos test: the tick was stored, the process died before the edit, and the
    replayed press was ignored, so the participant never saw the tick."""
    from telegram import Update

    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    hospital = await chat.press(first, "self")
    treatment = await chat.press(hospital, "no")
    before, unticked = treatment.reply_markup, treatment.buttons
    press = await sandbox.press(chat.user, treatment, data_for(treatment, "+chemo"))
    await sandbox.wait_until(lambda: treatment.buttons != unticked)
    ticked = treatment.buttons
    # The edit is lost with the process: the message shows no tick, and the press comes again.
    treatment.reply_markup = before
    sandbox.state.pressed.append("replay")
    replay = {**press, "callback_query": {**press["callback_query"], "id": "replay"}}
    await bot.process_update(Update.de_json(replay, bot.bot))
    assert treatment.buttons == ticked


def test_an_answer_writes_its_row_and_the_next_step_once_each(
    engine: Engine, clock: FrozenClock
) -> None:
    """The answer's row and the check-in's next step are one INSERT and one UPDATE, written as
    the turn makes them (models/checkins, statements built once). The check-in then holds what
    its row holds, the update it acted on included, so that update replayed changes nothing."""
    answers = "checkin_answer"
    linked(engine, clock, "P001", USER)
    chat = Driver(engine, clock, USER)
    chat.say("开始")
    with transaction(engine) as session:
        before = session.get(CheckIn, 1)
        assert before is not None and before.current_item == "respondent"
        button = CheckinButton(1, before.step, "proxy")
    press = flow.Update(USER, 41, clock(), "study office")
    with transaction(engine) as session, counting(engine, selects_only=False) as statements:
        outcome = flow.press_answer(session, press, button)
    assert outcome.notice is None and outcome.outbox
    writes = [s.split()[:3] for s in statements if not s.lstrip().upper().startswith("SELECT")]
    assert [w for w in writes if w[:2] == ["UPDATE", "checkin"]] == [["UPDATE", "checkin", "SET"]]
    assert [w for w in writes if w[2:] == ["checkin_answer"]] == [["INSERT", "INTO", answers]]

    def stored() -> tuple[object, ...]:
        with transaction(engine) as session:
            row = session.get(CheckIn, 1)
            assert row is not None
            return row.step, row.current_item, row.draft, row.last_update_id, row.updated_at, \
                current_answers(session, 1)  # fmt: skip

    after = stored()
    assert after == (button.step + 1, "vital_status", None, 41, clock(),
                     {"respondent": "proxy"})  # fmt: skip
    clock.advance(dt.timedelta(minutes=1))
    with transaction(engine) as session:  # the same update again, pressed on the next question
        again = flow.press_answer(session, press, CheckinButton(1, after[0], "alive"))
    assert again.outbox == [] and again.notice is None
    assert stored() == after
