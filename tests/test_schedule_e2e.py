"""The schedule end to end through the sandbox: prompts, /next, and Telegram's failures."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.deps import BotApp, Deps
from bot.replies import sender
from messages.render import render
from models.db import transaction
from models.participants import participant_by_study_id
from models.tables import Alert, OutboxMessage, Visit
from sandbox import Sandbox, SandboxUser
from sandbox.faults import Fault
from sandbox.state import plain_text
from scheduler.clock import FrozenClock
from scheduler.dispatch import dispatch_pass
from tests.factories import enroll_participant
from tests.virtual_time import BotRequests

PROMPT_AT = dt.datetime(2026, 4, 15, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
REMINDER_AT = dt.datetime(2026, 4, 18, 2, tzinfo=dt.UTC)


async def linked(sandbox: Sandbox, engine: Engine, clock: FrozenClock, study_id: str = "P001",
                 language: str = "zh") -> SandboxUser:  # fmt: skip
    """A participant whose chat is linked (directly: the greeting is another test's business)."""
    enroll_participant(
        engine, clock, study_id, language=language, enrolled_on=dt.date(2026, 1, 15)
    )
    user = sandbox.add_user()
    with transaction(engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None
        participant.telegram_user_id = participant.telegram_chat_id = user.id
        session.add(participant)
    return user


async def tick(bot: BotApp, deps: Deps, clock: FrozenClock, at: dt.datetime) -> int:
    clock.set(at)
    dispatch_pass(deps.engine, deps.settings, clock())
    return await sender(bot).flush()


async def sent_rows_settled(bot: BotApp) -> None:
    """Wait, bounded, until the bot has recorded every send it handed to the sandbox."""
    await asyncio.wait_for(sender(bot).settled(), timeout=10)


def notices(sandbox: Sandbox, coordinator: SandboxUser, text: str) -> int:
    return sum(1 for m in sandbox.messages_to(coordinator.id) if m.text == text)


def with_coordinator_chat(deps: Deps, sandbox: Sandbox) -> SandboxUser:
    coordinator = sandbox.add_user(first_name="Coordinator")
    deps.settings = deps.settings.model_copy(update={"coordinator_chat_id": coordinator.id})
    return coordinator


async def test_prompt_arrives_with_one_checkin_button_then_a_reminder(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    user = await linked(sandbox, engine, clock, language="en")
    assert await tick(bot, deps, clock, PROMPT_AT) == 1
    prompt = await sandbox.next_message(user.id, after=0)
    assert prompt.text.splitlines()[0] == "Your 3-month check-in from the study team is ready."
    with transaction(engine) as session:
        visit = session.exec(select(Visit).where(Visit.number == 1)).one()
    assert [data for _, data in prompt.buttons] == [f"checkin:open:{visit.id}"]
    assert await tick(bot, deps, clock, REMINDER_AT) == 1
    reminder = await sandbox.next_message(user.id, after=1)
    assert reminder.text.startswith("A reminder") and len(reminder.buttons) == 1


async def test_next_tells_the_date_of_the_next_checkin_in_the_participants_language(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    user = await linked(sandbox, engine, clock, language="zh")
    dispatch_pass(deps.engine, deps.settings, clock())  # plans the visits
    await sandbox.send_command(user, "next")
    reply = await sandbox.next_message(user.id, after=0)
    expected = render("next_visit", "zh", state="planned", date=dt.date(2026, 4, 15), months=3)
    assert reply.text == plain_text(expected)
    assert "2026年4月15日" in reply.text


async def test_blocked_bot_marks_unreachable_raises_one_alert_and_resumes_on_a_message(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    coordinator = with_coordinator_chat(deps, sandbox)
    user = await linked(sandbox, engine, clock)
    sandbox.block_bot(user)
    await tick(bot, deps, clock, PROMPT_AT)
    notice = plain_text(render("alert_unreachable", "zh", study_id="P001"))
    await sandbox.wait_until(lambda: notices(sandbox, coordinator, notice) == 1)
    await tick(bot, deps, clock, REMINDER_AT)  # held: nothing is even tried
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        alerts = session.exec(select(Alert)).all()
    assert participant is not None and participant.unreachable
    assert [(a.tier, a.kind, a.status) for a in alerts] == [("ADMIN", "unreachable", "open")]
    assert notices(sandbox, coordinator, notice) == 1 and sandbox.messages_to(user.id) == []
    sandbox.unblock_bot(user)
    await sandbox.send_text(user, "hello again")
    await sandbox.next_message(user.id, after=0)  # the ordinary reply
    await sent_rows_settled(bot)  # before the clock jumps past the reply's send lease
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        alert = session.exec(select(Alert)).one()
    assert participant is not None and not participant.unreachable and alert.status == "resolved"
    await tick(bot, deps, clock, REMINDER_AT + dt.timedelta(hours=1))
    assert (await sandbox.next_message(user.id, after=1)).text.startswith("温馨提醒")
    assert len(sandbox.messages_to(user.id)) == 2


async def test_server_errors_and_timeouts_are_retried_with_backoff_and_nothing_is_lost(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    user = await linked(sandbox, engine, clock)
    sandbox.faults.append(Fault(kind="500", method="sendMessage", times=1))
    assert await tick(bot, deps, clock, PROMPT_AT) == 0
    sandbox.faults.append(Fault(kind="timeout", method="sendMessage", times=1))
    clock.advance(dt.timedelta(seconds=5))
    assert await sender(bot).flush() == 0
    with transaction(engine) as session:
        row = session.exec(select(OutboxMessage).where(OutboxMessage.purpose == "prompt:P001:1"))
        message = row.one()
    assert (message.status, message.attempts) == ("pending", 2)
    assert await sender(bot).flush() == 0  # backing off: not due yet
    clock.advance(dt.timedelta(seconds=10))
    assert await sender(bot).flush() == 1
    assert len(sandbox.messages_to(user.id)) == 1


async def test_a_429_holds_every_send_until_retry_after_has_passed(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    users = [await linked(sandbox, engine, clock, f"P00{n}") for n in range(1, 4)]
    requests = BotRequests(asyncio.get_running_loop().time)  # the rate limiter's clock
    requests.install(monkeypatch)
    sandbox.faults.append(Fault(kind="429", method="sendMessage", retry_after=1,
                                global_block=True))  # fmt: skip
    assert await tick(bot, deps, clock, PROMPT_AT) == 3
    # Once the bot has a 429 back, it starts no request until the window ends (requests of other
    # chats already on their way reach the sandbox inside it; the bot could not have known).
    assert requests.windows and requests.made_inside_a_window() == 0
    assert all(len(sandbox.messages_to(u.id)) == 1 for u in users)
