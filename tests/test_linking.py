"""End to end through the sandbox: invites link a chat once, and strangers learn nothing."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.deps import BotApp, Deps
from messages.render import render, render_bilingual
from models.db import transaction
from models.participants import participant_by_study_id
from models.tables import AuditEvent
from sandbox import Sandbox
from sandbox.state import plain_text
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant

NEUTRAL = plain_text(render_bilingual("neutral"))


async def test_valid_invite_links_the_chat_and_greets_in_chinese(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    invite = enroll_participant(engine, clock, "P001", language="zh")
    user = sandbox.add_user(first_name="Wei")
    await sandbox.send_command(user, "start", invite.token)
    greeting = await sandbox.next_message(user.id, after=0)
    assert greeting.text == plain_text(render("greeting", "zh"))
    assert "120" in greeting.text
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None
        assert participant.telegram_user_id == user.id
        assert participant.telegram_chat_id == user.id
        actions = session.exec(select(AuditEvent.action)).all()
    assert "participant.linked" in actions


async def test_english_participant_is_greeted_in_english(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    invite = enroll_participant(engine, clock, "P002", language="en")
    user = sandbox.add_user(language_code="zh")
    await sandbox.send_command(user, "start", invite.token)
    greeting = await sandbox.next_message(user.id, after=0)
    assert greeting.text.startswith("Hello. This is the follow-up assistant")


async def test_used_token_gives_another_user_the_neutral_reply(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    invite = enroll_participant(engine, clock)
    owner, other = sandbox.add_user(), sandbox.add_user()
    await sandbox.send_command(owner, "start", invite.token)
    await sandbox.next_message(owner.id, after=0)
    await sandbox.send_command(other, "start", invite.token)
    reply = await sandbox.next_message(other.id, after=0)
    assert reply.text == NEUTRAL
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.telegram_user_id == owner.id


async def test_owner_reopening_their_link_is_greeted_again(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    invite = enroll_participant(engine, clock)
    owner = sandbox.add_user()
    await sandbox.send_command(owner, "start", invite.token)
    await sandbox.send_command(owner, "start", invite.token)
    second = await sandbox.next_message(owner.id, after=1)
    assert second.text == plain_text(render("greeting", "zh"))


async def test_every_kind_of_failure_gets_the_identical_neutral_reply(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    expired = enroll_participant(engine, clock, "P010", invite_ttl=dt.timedelta(days=1))
    used = enroll_participant(engine, clock, "P011")
    owner = sandbox.add_user()
    await sandbox.send_command(owner, "start", used.token)
    await sandbox.next_message(owner.id, after=0)
    clock.advance(dt.timedelta(days=2))
    attempts = [
        ["start", "not-a-real-token-at-all-000000000"],
        ["start", expired.token],
        ["start", used.token],
        ["start", "<b>&"],
        ["start"],
        ["help"],
        ["language"],
    ]
    replies = []
    for attempt in attempts:
        stranger = sandbox.add_user()
        await sandbox.send_command(stranger, *attempt)
        replies.append((await sandbox.next_message(stranger.id, after=0)).text)
    talker = sandbox.add_user()
    await sandbox.send_text(talker, "Is P011 in your study?")
    replies.append((await sandbox.next_message(talker.id, after=0)).text)
    assert set(replies) == {NEUTRAL}


async def test_revoked_invite_no_longer_links(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    from models.participants import issue_invite

    first = enroll_participant(engine, clock)
    with transaction(engine) as session:
        fresh = issue_invite(
            session, study_id="P001", now=clock(), invite_ttl=dt.timedelta(days=30), actor="t"
        )
    user = sandbox.add_user()
    await sandbox.send_command(user, "start", first.token)
    assert (await sandbox.next_message(user.id, after=0)).text == NEUTRAL
    await sandbox.send_command(user, "start", fresh.token)
    assert (await sandbox.next_message(user.id, after=1)).text == plain_text(
        render("greeting", "zh")
    )


async def test_repeated_bad_tokens_are_throttled_even_for_a_valid_one(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    invite = enroll_participant(engine, clock)
    guesser = sandbox.add_user()
    for n in range(5):
        await sandbox.send_command(guesser, "start", f"guess-{n:030d}")
        await sandbox.next_message(guesser.id, after=n)
    await sandbox.send_command(guesser, "start", invite.token)
    assert (await sandbox.next_message(guesser.id, after=5)).text == NEUTRAL
    clock.advance(dt.timedelta(minutes=16))
    await sandbox.send_command(guesser, "start", invite.token)
    assert (await sandbox.next_message(guesser.id, after=6)).text == plain_text(
        render("greeting", "zh")
    )


async def test_help_and_language_switch_for_a_linked_participant(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    invite = enroll_participant(engine, clock, language="zh")
    user = sandbox.add_user()
    await sandbox.send_command(user, "start", invite.token)
    await sandbox.send_command(user, "help")
    assert "/language" in (await sandbox.next_message(user.id, after=1)).text
    assert "切换语言" in sandbox.messages_to(user.id)[1].text
    await sandbox.send_command(user, "language")
    assert (await sandbox.next_message(user.id, after=2)).text.startswith("Done.")
    await sandbox.send_command(user, "help")
    assert (await sandbox.next_message(user.id, after=3)).text.startswith("This chat is for")
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.language == "en"
    await sandbox.send_command(user, "language")
    assert (await sandbox.next_message(user.id, after=4)).text.startswith("好的")


async def test_command_menu_is_published_in_both_languages(bot: BotApp, sandbox: Sandbox) -> None:
    assert {c["command"] for c in sandbox.state.commands["zh"]} >= {"help", "language"}
    assert {c["command"] for c in sandbox.state.commands["en"]} >= {"help", "language"}
    assert (
        sandbox.state.commands["en"][0]["description"]
        != sandbox.state.commands["zh"][0]["description"]
    )


async def test_stray_button_press_is_answered_and_changes_nothing(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    invite = enroll_participant(engine, clock)
    user = sandbox.add_user()
    await sandbox.send_command(user, "start", invite.token)
    greeting = await sandbox.next_message(user.id, after=0)
    await sandbox.press(user, greeting, "forged:data")
    await sandbox.wait_until(lambda: not sandbox.unanswered_callbacks())
    assert len(sandbox.messages_to(user.id)) == 1


async def test_group_messages_are_ignored(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> None:
    invite = enroll_participant(engine, clock)
    user = sandbox.add_user()
    group = {"id": -100123, "type": "group", "title": "family"}
    sandbox.group_chats.add(-100123)
    await sandbox.send_text(user, f"/start {invite.token}", chat=group)
    await sandbox.send_text(user, "/help")  # processed after the group message: per-chat order
    await sandbox.next_message(user.id, after=0)
    assert sandbox.messages_to(-100123) == []
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.telegram_user_id is None


async def test_a_participant_who_links_after_the_due_date_is_prompted_at_once(
    bot: BotApp, sandbox: Sandbox, deps: Deps, clock: FrozenClock
) -> None:
    from scheduler.dispatch import dispatch_pass

    # Enrolled three months before the clock's date: visit 1 is due today at 10:00 local.
    invite = enroll_participant(deps.engine, clock, enrolled_on=dt.date(2025, 12, 2))
    held = await asyncio.to_thread(dispatch_pass, deps.engine, deps.settings, clock())
    assert held.messages == 0  # nobody to send to yet
    clock.advance(dt.timedelta(minutes=5))
    user = sandbox.add_user()
    await sandbox.send_command(user, "start", invite.token)
    await sandbox.next_message(user.id, after=0)
    clock.advance(dt.timedelta(minutes=1))
    report = await asyncio.to_thread(dispatch_pass, deps.engine, deps.settings, clock())
    assert report.sent == {"prompt": 1}
