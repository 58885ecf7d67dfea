"""End to end through the sandbox: alerts reach the coordinators and stay open until handled."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.deps import BotApp, Deps
from bot.replies import sender
from messages.render import render
from models.db import transaction
from models.tables import Alert, AuditEvent, OutboxMessage
from sandbox import Fault, Sandbox, SandboxUser
from sandbox.state import BotMessage, plain_text
from scheduler.clock import FrozenClock
from scheduler.dispatch import dispatch_pass
from tests.checkin_chat import SYMPTOM_FIRSTS, YES_NO_SIGNS, Chat, linked_chat

EMERGENCY_ZH = plain_text(render("emergency", "zh"))


def coordinator(sandbox: Sandbox, deps: Deps) -> SandboxUser:
    user = sandbox.add_user(language_code="en")
    deps.settings = deps.settings.model_copy(
        update={"coordinator_chat_id": user.id, "coordinator_ids": frozenset({user.id}),
                "coordinator_language": "en"}
    )  # fmt: skip
    return user


async def red_cough(chat: Chat) -> BotMessage:
    """Answer up to cough severity and press 4; return the next question after the text."""
    first = await chat.say("开始")
    message = await chat.press(first, "self")
    message = await chat.press(message, "no")  # hospital
    await chat.press_only(message, "+immuno")
    message = await chat.press(chat.sandbox.messages_to(chat.user.id)[chat.seen - 1], "~d")
    message = await chat.press(message, "no")  # treatment changed
    message = await chat.press(message, "no")  # progression
    message = await chat.press(message, "1")  # activity
    message = await chat.press(message, "0")  # dyspnoea
    return await chat.press(message, "4")  # cough severity: RED


def notices(sandbox: Sandbox, user: SandboxUser) -> list[BotMessage]:
    return [m for m in sandbox.messages_to(user.id) if "Alert #" in m.text]


def statuses(sandbox: Sandbox, user: SandboxUser) -> list[int]:
    calls = sandbox.state.calls
    return [c.status for c in calls if c.params.get("chat_id") == user.id]


async def settled(deps: Deps) -> None:
    """Until every message handed to the sandbox is recorded as sent (bounded, never sleeps)."""

    def sending(session: Session) -> int:
        query = select(OutboxMessage.id).where(OutboxMessage.status == "sending")
        return len(session.exec(query).all())

    for _ in range(1000):
        if not await deps.db(sending):
            return
    raise AssertionError("outbox never settled")


def alerts(engine: Engine) -> list[Alert]:
    with transaction(engine) as session:
        return list(session.exec(select(Alert).order_by(Alert.id)).all())  # type: ignore[arg-type]


async def test_red_answer_reaches_the_coordinator_and_the_check_in_continues(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    chat = await linked_chat(sandbox, engine, clock)
    emergency = await red_cough(chat)
    assert emergency.text == EMERGENCY_ZH
    following = await chat.expect()
    assert "咳嗽" in following.text or following.buttons  # the check-in goes on
    notice = await sandbox.next_message(boss.id, after=0)
    assert "[RED] Alert #1" in notice.text and "P001" in notice.text and "visit 1" in notice.text
    assert "Cough" in notice.text and "4" in notice.text
    assert [label for label, _ in notice.buttons] == [
        "✅ Acknowledge", "✔️ Resolve", "📋 Show answers"
    ]  # fmt: skip
    (alert,) = alerts(engine)
    assert (alert.tier, alert.kind, alert.rules_version) == ("RED", "score", "rules-v1")
    assert str(chat.user.id) not in notice.text


async def test_acknowledge_by_an_allowed_user_edits_the_notice_and_is_audited(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    chat = await linked_chat(sandbox, engine, clock)
    await chat.say("我今天胸痛得厉害")
    notice = await sandbox.next_message(boss.id, after=0)
    assert "chest pain" not in notice.text and "胸痛" in notice.text
    await sandbox.press(boss, notice, notice.button("Acknowledge"))
    await sandbox.wait_until(lambda: "acknowledged by" in notice.text)
    assert [label for label, _ in notice.buttons] == ["✔️ Resolve", "📋 Show answers"]
    (alert,) = alerts(engine)
    assert alert.status == "acknowledged" and alert.acknowledged_by == f"coordinator:{boss.id}"
    with transaction(engine) as session:
        actions = session.exec(select(AuditEvent.action)).all()
    assert "alert.acknowledged" in actions
    assert sandbox.unanswered_callbacks() == []


async def test_a_stranger_pressing_changes_nothing(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    stranger = sandbox.add_user()
    chat = await linked_chat(sandbox, engine, clock)
    await chat.say("can't breathe")
    notice = await sandbox.next_message(boss.id, after=0)
    await sandbox.press(stranger, notice, notice.button("Acknowledge"))
    await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    (alert,) = alerts(engine)
    assert alert.status == "open" and notice.edits == []
    await sandbox.send_command(stranger, "alerts")
    reply = await sandbox.next_message(stranger.id, after=0)
    assert "#1" not in reply.text


async def test_unacknowledged_red_is_sent_again_every_30_minutes_until_acknowledged(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    chat = await linked_chat(sandbox, engine, clock)
    await chat.say("胸痛")
    first = await sandbox.next_message(boss.id, after=0)
    await settled(deps)
    clock.advance(dt.timedelta(minutes=29))
    dispatch_pass(engine, deps.settings, clock())
    await sender(bot).flush()
    assert len(notices(sandbox, boss)) == 1
    clock.advance(dt.timedelta(minutes=1))
    dispatch_pass(engine, deps.settings, clock())
    await sender(bot).flush()
    await sandbox.wait_until(lambda: len(notices(sandbox, boss)) == 2)
    again = notices(sandbox, boss)[1]
    assert "Still not acknowledged" in again.text and "#1" in again.text
    await sandbox.press(boss, again, again.button("Acknowledge"))
    await sandbox.wait_until(lambda: "acknowledged by" in first.text)
    clock.advance(dt.timedelta(hours=2))
    dispatch_pass(engine, deps.settings, clock())
    await sender(bot).flush()
    assert len(notices(sandbox, boss)) == 2


async def test_an_undeliverable_alert_is_retried_after_the_fault_clears(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    sandbox.block_bot(boss)
    sandbox.faults.append(Fault("500", method="sendMessage", chat_id=boss.id, times=1))
    chat = await linked_chat(sandbox, engine, clock)
    await chat.say("胸痛")
    for refusal in (500, 403):  # each leaves the notice pending, to be sent again
        await sandbox.wait_until(lambda: refusal in statuses(sandbox, boss))  # noqa: B023
        with transaction(engine) as session:
            query = select(OutboxMessage).where(OutboxMessage.purpose == "alert:1")
            assert session.exec(query).one().status == "pending"
        clock.advance(dt.timedelta(minutes=10))
        await sender(bot).flush()
    sandbox.unblock_bot(boss)
    clock.advance(dt.timedelta(minutes=10))
    await sender(bot).flush()
    notice = await sandbox.next_message(boss.id, after=0)
    assert "[RED] Alert #1" in notice.text
    (alert,) = alerts(engine)
    assert alert.status == "open"


async def test_resolve_takes_a_note_by_reply(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    chat = await linked_chat(sandbox, engine, clock)
    await chat.say("胸痛")
    notice = await sandbox.next_message(boss.id, after=0)
    await sandbox.press(boss, notice, notice.button("Resolve"))
    ask = await sandbox.next_message(boss.id, after=1)
    assert "reply to this message" in ask.text
    await sandbox.send_text(boss, "Called, went to ED <ok>",
                            reply_to_message=sandbox.state.message_dict(ask))  # fmt: skip
    await sandbox.wait_until(lambda: "resolved by" in notice.text)
    assert "Called, went to ED &lt;ok&gt;" in notice.html
    (alert,) = alerts(engine)
    assert alert.status == "resolved" and alert.resolution_note == "Called, went to ED <ok>"


async def test_an_emergency_phrase_without_an_open_visit_and_inside_a_check_in(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    lonely = await linked_chat(sandbox, engine, clock, "P002", with_visit=False)
    reply = await lonely.say("Since yesterday I can't breathe properly")
    assert reply.text == EMERGENCY_ZH
    chat = await linked_chat(sandbox, engine, clock, "P001")
    await chat.say("开始")
    assert (await chat.say("我爸爸昏迷了")).text == EMERGENCY_ZH
    again = await chat.expect()  # then the check-in goes on: its question, asked again
    assert "今天是谁在回答" in again.text and again.buttons
    await sandbox.wait_until(lambda: len(notices(sandbox, boss)) == 2)
    assert [a.kind for a in alerts(engine)] == ["emergency_phrase", "emergency_phrase"]


async def test_amber_answers_get_a_note_at_the_end_and_one_amber_alert(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    chat = await linked_chat(sandbox, engine, clock)
    message = await chat.press(await chat.say("开始"), "self")
    message = await chat.press(message, "no")  # hospital
    await chat.press_only(message, "+immuno")
    message = await chat.press(sandbox.messages_to(chat.user.id)[chat.seen - 1], "~d")
    for code in ("no", "no", "1"):  # treatment changed, progression, activity
        message = await chat.press(message, code)
    for _ in SYMPTOM_FIRSTS[:-1]:
        message = await chat.press(message, "0")
    message = await chat.press(message, "3")  # fever frequency: often (AMBER)
    message = await chat.press(message, "1")  # fever severity
    message = await chat.press(message, "no")  # 38 °C
    for _ in YES_NO_SIGNS:
        message = await chat.press(message, "no")
    message = await chat.press(message, "8")
    message = await chat.press(message, "yes")  # call request (AMBER)
    summary = await chat.press(message, "~s")
    thanks = await chat.press(summary, "~ok")
    note = await chat.expect()
    assert thanks.text.startswith("谢谢您") and note.text == plain_text(
        render("checkin_amber", "zh")
    )
    (alert,) = alerts(engine)
    assert (alert.tier, alert.kind) == ("AMBER", "checkin_amber")
    await sandbox.wait_until(lambda: len(notices(sandbox, boss)) == 1)
    text = notices(sandbox, boss)[0].text
    assert "[AMBER]" in text and "Asked the study team to call" in text and "Fever" in text


async def test_show_answers_and_the_coordinator_commands(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    chat = await linked_chat(sandbox, engine, clock)
    await red_cough(chat)
    notice = await sandbox.next_message(boss.id, after=0)
    await sandbox.press(boss, notice, notice.button("Show answers"))
    answers = await sandbox.next_message(boss.id, after=1)
    assert "answers of P001, visit 1" in answers.text and "Cough" in answers.text
    await sandbox.send_command(boss, "alerts")
    listed = await sandbox.next_message(boss.id, after=2)
    assert "Open alerts: 1" in listed.text and "#1 [RED] P001 visit 1" in listed.text
    await sandbox.send_command(boss, "due")
    due = await sandbox.next_message(boss.id, after=3)
    assert "P001 visit 1 (due 2026-02-25): overdue" in due.text
    await sandbox.send_command(boss, "participant", "P001")
    story = await sandbox.next_message(boss.id, after=4)
    assert "P001" in story.text and "#1 RED score: open" in story.text
    await sandbox.send_command(boss, "participant", "NOPE")
    assert "No such participant" in (await sandbox.next_message(boss.id, after=5)).text
    assert str(chat.user.id) not in " ".join(m.text for m in sandbox.messages_to(boss.id))
    await sandbox.send_command(chat.user, "alerts")  # a participant is no coordinator
    assert "#1" not in (await chat.expect()).text


async def test_the_daily_digest_goes_once_from_9_local(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    chat = await linked_chat(sandbox, engine, clock)
    await chat.say("胸痛")
    await sandbox.next_message(boss.id, after=0)
    await settled(deps)
    clock.advance(dt.timedelta(hours=22, minutes=59))  # 08:59 in Shanghai the next day
    for _ in range(2):
        dispatch_pass(engine, deps.settings, clock())
        clock.advance(dt.timedelta(minutes=1))
    await sender(bot).flush()
    digests = [m for m in sandbox.messages_to(boss.id) if "Daily digest" in m.text]
    assert [d.text.splitlines()[0] for d in digests] == ["Daily digest 2026-03-03"]
    assert "#1 [RED] P001" in digests[0].text
