"""Accepted updates are durable: a kill between getUpdates and the handlers loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.deps import BotApp, Deps
from bot.durable import DurableBot
from bot.runtime import running
from messages.render import render
from models import inbox
from models.db import transaction
from models.inbox import InboxUpdate, strip_names
from models.participants import participant_by_study_id
from sandbox import Sandbox
from sandbox.faults import Fault
from sandbox.state import plain_text
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant


async def test_handled_updates_are_marked_and_their_payload_and_names_dropped(
    bot: BotApp, sandbox: Sandbox, deps: Deps, clock: FrozenClock
) -> None:
    invite = enroll_participant(deps.engine, clock)
    user = sandbox.add_user(first_name="Secretname", username="secret_user")
    await sandbox.send_command(user, "start", invite.token)
    await sandbox.next_message(user.id, after=0)
    await sandbox.wait_until(lambda: not bot.bot._in_flight)  # type: ignore[attr-defined]
    with transaction(deps.engine) as session:
        rows = session.exec(select(InboxUpdate)).all()
    assert len(rows) == 1 and rows[0].done_at is not None and rows[0].payload is None


def test_names_are_stripped_before_anything_is_stored() -> None:
    update = {"update_id": 1, "message": {"from": {"id": 5, "first_name": "Li", "username": "li"},
              "chat": {"id": 5, "first_name": "Li"}, "text": "hi"}}  # fmt: skip
    stored = strip_names(update)
    assert "Li" not in str(stored) and "'li'" not in str(stored)
    assert stored["message"]["text"] == "hi" and stored["message"]["from"]["id"] == 5


async def test_an_update_in_flight_at_a_kill_is_handled_after_restart(
    sandbox: Sandbox, deps: Deps, clock: FrozenClock
) -> None:
    """Simulate the kill: the update is recorded and confirmed, but no handler ever ran."""
    invite = enroll_participant(deps.engine, clock)
    user = sandbox.add_user()
    deps.settings = deps.settings.model_copy(update={"telegram_api_url": sandbox.api_url})
    await sandbox.send_command(user, "start", invite.token)

    from bot.durable import DurableBot

    doomed = DurableBot(deps, sandbox.token)
    await doomed.initialize()
    taken = await doomed.get_updates(timeout=1)
    assert len(taken) == 1
    await doomed.get_updates(offset=taken[0].update_id + 1, timeout=0)  # offset confirmed
    await doomed.shutdown()  # ...and the process dies before any handler runs
    assert sandbox.state.updates == [] and sandbox.messages_to(user.id) == []

    async with running(deps, token=sandbox.token, poll_timeout=1, with_scheduler=False):
        greeting = await sandbox.next_message(user.id, after=0)
    assert greeting.text == plain_text(render("greeting", "zh"))
    with transaction(deps.engine) as session:
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.telegram_user_id == user.id


async def test_a_stop_handles_what_its_last_poll_recorded(
    sandbox: Sandbox, deps: Deps, clock: FrozenClock
) -> None:
    """A stop cancels the long poll, then python-telegram-bot calls getUpdates once more to
    confirm the offset and drops what that call returns. Recorded by then, such an update is
    handled before the stop completes, not left for a start that may never come."""
    invite = enroll_participant(deps.engine, clock)
    user = sandbox.add_user()
    deps.settings = deps.settings.model_copy(update={"telegram_api_url": sandbox.api_url})
    held = Fault(kind="delay", method="getUpdates", delay=120, times=1)  # until the sandbox stops
    sandbox.faults.append(held)
    async with running(deps, token=sandbox.token, poll_timeout=1, with_scheduler=False):
        await sandbox.wait_until(lambda: held.fired == 1)  # the long poll is held at Telegram
        await sandbox.send_command(user, "start", invite.token)  # arrives; then the stop
    assert [m.text for m in sandbox.messages_to(user.id)] == [plain_text(render("greeting", "zh"))]
    with transaction(deps.engine) as session:
        assert inbox.pending(session) == []
        participant = participant_by_study_id(session, "P001")
        assert participant is not None and participant.telegram_user_id == user.id


async def test_a_duplicate_delivery_of_one_update_has_one_effect(
    bot: BotApp, sandbox: Sandbox, deps: Deps, clock: FrozenClock
) -> None:
    invite = enroll_participant(deps.engine, clock)
    user = sandbox.add_user()
    await sandbox.send_command(user, "start", invite.token)
    await sandbox.next_message(user.id, after=0)
    await sandbox.wait_until(lambda: not bot.bot._in_flight)  # type: ignore[attr-defined]
    first = sandbox.state.sent[0]
    # Telegram delivers the same update_id again (e.g. after a lost confirmation).
    command = [{"type": "bot_command", "offset": 0, "length": 5}]
    replay = {"update_id": 1, "message": {
        "message_id": 99, "date": 0, "chat": user.private_chat(), "from": user.as_dict(),
        "text": "/help", "entities": command}}  # fmt: skip
    sandbox.state.updates.append(replay)
    await sandbox.send_command(user, "help")
    second = await sandbox.next_message(user.id, after=1)
    assert "/language" in second.text and first.text != second.text
    await sandbox.wait_until(lambda: not sandbox.state.updates)
    assert len(sandbox.messages_to(user.id)) == 2


async def test_a_start_replayed_after_its_commit_greets_once_and_never_as_a_stranger(
    bot: BotApp, sandbox: Sandbox, deps: Deps, clock: FrozenClock
) -> None:
    """Found by the chaos test: the replay found the greeting already queued and took that
    for a failed link, sending a linked participant the stranger's reply."""
    from telegram import Update

    invite = enroll_participant(deps.engine, clock)
    user = sandbox.add_user()
    command = [{"type": "bot_command", "offset": 0, "length": 6}]
    payload = {"update_id": 9001, "message": {
        "message_id": 5, "date": 0, "chat": user.private_chat(), "from": user.as_dict(),
        "text": f"/start {invite.token}", "entities": command}}  # fmt: skip
    update = Update.de_json(payload, bot.bot)
    await bot.process_update(update)  # handled, then the process "dies" before marking it
    await bot.process_update(update)  # replayed after the restart
    greeting = plain_text(render("greeting", "zh"))
    assert [m.text for m in sandbox.messages_to(user.id)] == [greeting]


async def test_updates_handled_together_are_marked_in_one_transaction_each_group(
    deps: Deps, engine: Engine
) -> None:
    """Marks are group-committed: 20 updates finishing at once cost two transactions, not 20,
    and each caller returns only once its own mark is committed."""
    bot = DurableBot(deps, "123456:" + "A" * 35)
    updates = [{"update_id": n, "message": {"text": "x"}} for n in range(1, 21)]
    with transaction(engine) as session:
        inbox.record(session, updates=updates, now=deps.now())
    transactions = 0
    run = deps.db

    async def counted(work: Any) -> Any:
        nonlocal transactions
        transactions += 1
        return await run(work)

    deps.db = counted  # type: ignore[method-assign]

    async def mark(update_id: int) -> bool:
        await bot.mark_handled(update_id)
        with transaction(engine) as session:
            row = session.get(InboxUpdate, update_id)
            return row is not None and row.done_at is not None

    assert all(await asyncio.gather(*(mark(n) for n in range(1, 21))))
    assert transactions == 2  # the first alone, the other 19 while it was written
