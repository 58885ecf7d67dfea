"""ADMIN alerts (missed visit, unreachable, withdrawal) carry the same buttons as every alert."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from bot.deps import BotApp, Deps
from bot.replies import sender
from sandbox import Sandbox
from sandbox.state import BotMessage
from scheduler.clock import FrozenClock
from scheduler.dispatch import dispatch_pass
from tests.checkin_chat import linked_chat
from tests.test_alerts_e2e import alerts, coordinator


async def test_a_missed_visit_notice_can_be_acknowledged_from_telegram(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock, deps: Deps
) -> None:
    boss = coordinator(sandbox, deps)
    await linked_chat(sandbox, engine, clock, with_visit=False)  # enrolled 2026-01-15
    dispatch_pass(deps.engine, deps.settings, clock())  # plans visit 1, due 2026-04-15
    clock.set(dt.datetime(2026, 5, 6, 0, 30, tzinfo=dt.UTC))  # its window has closed
    dispatch_pass(deps.engine, deps.settings, clock())
    await sender(bot).flush()
    await sandbox.wait_until(lambda: bool(admin_notices(sandbox, boss.id)))
    (notice,) = admin_notices(sandbox, boss.id)
    assert "[ADMIN]" in notice.text and "P001" in notice.text
    assert [label for label, _ in notice.buttons] == [
        "✅ Acknowledge", "✔️ Resolve", "📋 Show answers",
    ]  # fmt: skip
    await sandbox.press(boss, notice, notice.button("Acknowledge"))
    await sandbox.wait_until(lambda: "acknowledged by" in notice.text)
    (alert,) = alerts(engine)
    assert alert.kind == "visit_missed" and alert.status == "acknowledged"
    dispatch_pass(deps.engine, deps.settings, clock())  # the escalation pass sends no second one
    await sender(bot).flush()
    assert len(admin_notices(sandbox, boss.id)) == 1


def admin_notices(sandbox: Sandbox, chat_id: int) -> list[BotMessage]:
    return [m for m in sandbox.messages_to(chat_id) if "[ADMIN]" in m.text or "ADMIN" in m.text]
