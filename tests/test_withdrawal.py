"""End to end through the sandbox: /withdraw, each scope, stop words, and silence afterwards."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from bot.deps import BotApp, Deps
from bot.durable import DurableBot
from messages.render import render
from models import outbox
from models.checkins import CheckIn, current_answers
from models.consent import ConsentEvent
from models.db import transaction
from models.inbox import InboxUpdate
from models.participants import participant_by_study_id
from models.tables import Alert, AuditEvent, OutboxMessage, Participant, Visit
from sandbox import Sandbox, SandboxUser
from sandbox.state import BotMessage, plain_text
from scheduler.clock import FrozenClock
from tests.checkin_chat import data_for, linked_chat
from tests.factories import enroll_participant


async def _linked(
    sandbox: Sandbox, engine: Engine, clock: FrozenClock, study_id: str = "P001", *,
    language: str = "zh", biospecimen: bool = False,
) -> SandboxUser:  # fmt: skip
    invite = enroll_participant(engine, clock, study_id, language=language,
                                biospecimen=biospecimen)  # fmt: skip
    user = sandbox.add_user(language_code=language)
    await sandbox.send_command(user, "start", invite.token)
    await sandbox.next_message(user.id, after=0)
    return user


def _participant(engine: Engine, study_id: str = "P001") -> Participant:
    with transaction(engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None
        return participant


def _open_visit_with_pending_prompt(engine: Engine, clock: FrozenClock) -> None:
    """A check-in under way: an open visit, and a reminder queued for later today."""
    participant = _participant(engine)
    assert participant.id is not None and participant.telegram_chat_id is not None
    with transaction(engine) as session:
        for number, status in ((1, "open"), (2, "planned")):
            session.add(Visit(participant_id=participant.id, number=number, status=status,
                              due_date=dt.date(2026, 3 * number, 2),
                              window_closes_on=dt.date(2026, 3 * number, 20),
                              created_at=clock()))  # fmt: skip
        outbox.enqueue(session, purpose="reminder-1:P001:1", chat_id=participant.telegram_chat_id,
                       participant_id=participant.id, text="reminder", now=clock(),
                       not_before=clock() + dt.timedelta(hours=1))  # fmt: skip


async def _withdraw_by_buttons(
    sandbox: Sandbox, engine: Engine, user: SandboxUser, after: int, *choices: str
) -> tuple[BotMessage, BotMessage]:
    """Send /withdraw, press each labelled choice in turn; return the menu and the confirmation."""
    await sandbox.send_command(user, "withdraw")
    menu = await sandbox.next_message(user.id, after=after)
    for label in choices:
        await sandbox.press(user, menu, menu.button(label))
        await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    confirmation = await sandbox.next_message(user.id, after=after + 1)
    await sandbox.wait_until(lambda: _nothing_sending(engine))
    return menu, confirmation


def _nothing_sending(engine: Engine) -> bool:
    """The sender has recorded every message it handed over (the sandbox sees them first)."""
    with transaction(engine) as session:
        query = select(OutboxMessage.id).where(OutboxMessage.status == "sending")
        return session.exec(query).first() is None


async def test_stop_chat_only_cancels_messages_but_visits_go_on_by_phone(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    user = await _linked(sandbox, engine, clock)
    _open_visit_with_pending_prompt(engine, clock)
    menu, done = await _withdraw_by_buttons(
        sandbox, engine, user, 1, "只停止聊天消息", "是的，退出"
    )
    assert done.text == plain_text(
        render("withdrawal_done_contact", "zh", team_contact="PUMCH K8454 study office")
    )
    assert menu.buttons == []  # the confirmed menu keeps no buttons
    participant = _participant(engine)
    assert (participant.status, participant.chat_contact) == ("active", False)
    with transaction(engine) as session:
        reminder = session.exec(
            select(OutboxMessage).where(OutboxMessage.purpose == "reminder-1:P001:1")
        ).one()
        visits = session.exec(select(Visit.status).order_by(col(Visit.number))).all()
        event = session.exec(select(ConsentEvent)).one()
        alert = session.exec(select(Alert)).one()
        actions = session.exec(select(AuditEvent.action)).all()
    assert reminder.status == "cancelled"
    assert list(visits) == ["open", "planned"]
    assert (event.scope, event.change, event.actor, event.channel) == (
        "contact", "withdraw", "participant", "chat")  # fmt: skip
    assert (alert.tier, alert.kind, alert.status) == ("ADMIN", "withdrawal", "open")
    assert "consent.withdrawn" in actions
    clock.advance(dt.timedelta(hours=2))
    assert await _flush(bot) == 0


async def _flush(bot: BotApp) -> int:
    from bot.replies import sender

    return await sender(bot).flush()


async def test_leaving_the_whole_study_cancels_future_visits(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    user = await _linked(sandbox, engine, clock, language="en")
    _open_visit_with_pending_prompt(engine, clock)
    await sandbox.send_text(user, "Fine")  # mid-conversation: a typed answer, then /withdraw
    _, done = await _withdraw_by_buttons(sandbox, engine, user, 2, "whole study", "Yes, withdraw")
    assert done.text.startswith("Done: you have left the study.")
    participant = _participant(engine)
    assert (participant.status, participant.chat_contact) == ("withdrawn", False)
    with transaction(engine) as session:
        visits = session.exec(select(Visit.status)).all()
        pending = outbox.pending_count(session)
    assert set(visits) == {"cancelled"}
    assert pending == 0


async def test_leaving_the_sample_part_asks_about_samples_and_keeps_the_chat(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    user = await _linked(sandbox, engine, clock, biospecimen=True)
    await sandbox.send_command(user, "withdraw")
    menu = await sandbox.next_message(user.id, after=1)
    assert [label for label, _ in menu.buttons] == [
        "只停止聊天消息", "退出样本部分", "退出整个研究", "一切保持不变"]  # fmt: skip
    for label in ("退出样本部分", "销毁我的样本", "是的，退出"):
        await sandbox.press(user, menu, menu.button(label))
        await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    done = await sandbox.next_message(user.id, after=2)
    assert "已采集的样本将销毁" in done.text
    participant = _participant(engine)
    assert (participant.biospecimen, participant.chat_contact) == (False, True)
    with transaction(engine) as session:
        event = session.exec(select(ConsentEvent)).one()
    assert (event.scope, event.samples) == ("biospecimen", "destroy")
    await sandbox.send_command(user, "help")  # still in chat contact
    assert "/withdraw" in (await sandbox.next_message(user.id, after=3)).text
    await sandbox.send_command(user, "withdraw")
    again = await sandbox.next_message(user.id, after=4)
    assert "退出样本部分" not in [label for label, _ in again.buttons]


async def test_stop_words_show_the_menu_and_withdraw_nobody_in_both_languages(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    wei = await _linked(sandbox, engine, clock, "P001", language="zh")
    ann = await _linked(sandbox, engine, clock, "P002", language="en")
    cases = [
        (wei, ("退出", "别再发了！", "不想参加了")),
        (ann, ("STOP", "unsubscribe", " stop. ")),
    ]
    for user, words in cases:
        for n, text in enumerate(words):
            await sandbox.send_text(user, text)
            menu = await sandbox.next_message(user.id, after=1 + n)
            assert len(menu.buttons) == 3, text
        assert len(sandbox.messages_to(user.id)) == 1 + len(words)
    zh_menu, en_menu = sandbox.messages_to(wei.id)[1], sandbox.messages_to(ann.id)[1]
    assert zh_menu.text.startswith("您可以随时退出") and en_menu.text.startswith("You can leave")
    await sandbox.press(ann, en_menu, en_menu.button("whole study"))
    await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    assert sandbox.messages_to(ann.id)[1].text.startswith("Please confirm")
    await sandbox.press(ann, en_menu, en_menu.button("No, go back"))
    await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    await sandbox.press(ann, en_menu, en_menu.button("Keep everything"))
    await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    assert sandbox.messages_to(ann.id)[1].text == render("withdraw_kept", "en")
    for study_id in ("P001", "P002"):
        participant = _participant(engine, study_id)
        assert (participant.status, participant.chat_contact) == ("active", True)
    await sandbox.send_text(wei, "我不想停止吃药")  # a longer message is not a stop word
    assert "退出" not in (await sandbox.next_message(wei.id, after=4)).text[:6]


async def test_after_leaving_chat_one_fixed_reply_a_day_and_the_emergency_text(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    user = await _linked(sandbox, engine, clock)
    menu, _ = await _withdraw_by_buttons(sandbox, engine, user, 1, "只停止聊天消息", "是的，退出")
    await sandbox.send_text(user, "你好")
    reply = await sandbox.next_message(user.id, after=3)
    assert reply.text.startswith("本聊天已不再为研究收发消息")
    for text in ("还在吗", "/help", "/withdraw", "退出"):
        await sandbox.send_text(user, text)
    await sandbox.send_text(user, "我胸痛")
    emergency = await sandbox.next_message(user.id, after=4)
    assert emergency.text == render("emergency", "zh")
    await sandbox.press(user, menu, "wd:v1:s:study")
    await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    assert len(sandbox.messages_to(user.id)) == 5
    await sandbox.wait_until(lambda: _nothing_sending(engine))
    clock.advance(dt.timedelta(days=1))
    await sandbox.send_text(user, "你好")
    assert (await sandbox.next_message(user.id, after=5)).text == reply.text
    assert _participant(engine).status == "active"


async def test_forged_or_stale_withdrawal_buttons_change_nothing(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    user = await _linked(sandbox, engine, clock)
    await sandbox.send_command(user, "withdraw")
    menu = await sandbox.next_message(user.id, after=1)
    for data in ("wd:v1:y:biospecimen:destroy", "wd:v2:y:study", "wd:v1:y", "wd:v1:x:study"):
        await sandbox.press(user, menu, data)
        await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    stranger = sandbox.add_user()
    await sandbox.press(stranger, menu, "wd:v1:y:study")
    await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    participant = _participant(engine)
    assert (participant.status, participant.chat_contact, participant.biospecimen) == (
        "active", True, False)  # fmt: skip
    assert len(sandbox.messages_to(user.id)) == 2


async def test_privacy_says_what_is_stored_in_the_participants_language(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    wei = await _linked(sandbox, engine, clock, "P001", language="zh")
    ann = await _linked(sandbox, engine, clock, "P002", language="en")
    await sandbox.send_command(wei, "privacy")
    await sandbox.send_command(ann, "privacy")
    zh = await sandbox.next_message(wei.id, after=1)
    en = await sandbox.next_message(ann.id, after=1)
    assert "不保存姓名或电话号码" in zh.text
    assert "/withdraw" in en.text


async def test_withdraw_is_in_the_command_menu_and_help(bot: BotApp, sandbox: Sandbox) -> None:
    for language in ("zh", "en"):
        assert {"withdraw", "privacy"} <= {c["command"] for c in sandbox.state.commands[language]}
        assert "/withdraw" in render("help", language, team_contact="x")


async def test_withdraw_in_the_middle_of_a_check_in_stops_the_check_in(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    chat = await linked_chat(sandbox, engine, clock)
    first = await chat.say("开始")
    second = await chat.press(first, "self")  # one answer given, the next question waiting
    await sandbox.send_command(chat.user, "withdraw")
    menu = await chat.expect()
    assert menu.text.startswith("您可以随时退出")
    for label in ("退出整个研究", "是的，退出"):
        await sandbox.press(chat.user, menu, menu.button(label))
        await chat.settle()
    done = await chat.expect()
    assert done.text.startswith("已完成：您已退出本研究")
    await sandbox.wait_until(lambda: _nothing_sending(engine))
    await sandbox.press(chat.user, second, data_for(second, "no"))  # the waiting question
    await chat.settle()
    await sandbox.send_text(chat.user, "没有")
    reply = await chat.expect()
    assert reply.text.startswith("本聊天已不再为研究收发消息")
    await sandbox.wait_until(lambda: _nothing_sending(engine))
    clock.advance(dt.timedelta(days=3))
    assert await _flush(bot) == 0
    assert len(sandbox.messages_to(chat.user.id)) == chat.seen
    with transaction(engine) as session:
        visit = session.exec(select(Visit)).one()
    assert visit.status == "cancelled"


async def test_coordinators_hear_of_the_withdrawal_and_of_a_later_emergency(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    coordinator = sandbox.add_user(first_name="Nurse")
    deps.settings = deps.settings.model_copy(update={"coordinator_chat_id": coordinator.id})
    user = await _linked(sandbox, engine, clock)
    await _withdraw_by_buttons(sandbox, engine, user, 1, "只停止聊天消息", "是的，退出")
    notice = await sandbox.next_message(coordinator.id, after=0)
    assert notice.text.startswith("[ADMIN] 研究编号 P001 已退出：仅聊天联系")
    await sandbox.send_text(user, "胸痛，喘不上气")
    assert (await sandbox.next_message(user.id, after=3)).text == render("emergency", "zh")
    red = await sandbox.next_message(coordinator.id, after=1)
    assert "P001" in red.text


def _unhandled(engine: Engine) -> int:
    with transaction(engine) as session:
        query = (
            select(func.count()).select_from(InboxUpdate).where(col(InboxUpdate.done_at).is_(None))
        )
        return session.exec(query).one()


@pytest.mark.parametrize("unreachable", [False, True], ids=["reachable", "unreachable"])
async def test_an_old_checkin_answer_pressed_after_leaving_chat_gets_the_stale_notice_only(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch, unreachable: bool,
) -> None:  # fmt: skip
    """No screen reads the participant for a check-in answer (bot.replies.passes_screens): the
    turn refuses it as the withdrawal screen did, and the update still ends marked handled."""
    handled = DurableBot.mark_handled

    async def mark_handled(self: DurableBot, update_id: int) -> None:
        await handled(self, update_id)
        await sandbox.notify_waiters()  # the mark is no Bot API call: wake the wait below

    monkeypatch.setattr(DurableBot, "mark_handled", mark_handled)
    chat = await linked_chat(sandbox, engine, clock, language="en")
    second = await chat.press(await chat.say("Start"), "self")
    await _withdraw_by_buttons(sandbox, engine, chat.user, chat.seen,
                               "Stop chat messages only", "Yes, withdraw")  # fmt: skip
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None
        participant.unreachable = unreachable  # the withdrawal screen ran first: it stays so
        session.add(participant)
        rows = session.exec(select(func.count()).select_from(OutboxMessage)).one()
    messages, shown = len(sandbox.messages_to(chat.user.id)), (second.text, second.buttons)
    await sandbox.press(chat.user, second, data_for(second, "no"))
    await chat.settle()
    notice = sandbox.state.callback_answers[sandbox.state.pressed[-1]].get("text")
    assert notice == render("stale_button", "en")
    await sandbox.wait_until(lambda: _unhandled(engine) == 0)
    assert len(sandbox.messages_to(chat.user.id)) == messages  # not the fixed reply either
    assert (second.text, second.buttons) == shown
    with transaction(engine) as session:
        checkin = session.exec(select(CheckIn)).one()
        assert current_answers(session, checkin.id or 0) == {"respondent": "self"}
        assert session.exec(select(func.count()).select_from(OutboxMessage)).one() == rows
    participant = _participant(engine)
    assert (participant.chat_contact, participant.unreachable) == (False, unreachable)
