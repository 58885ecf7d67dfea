"""The demo's withdrawal step: a stop word shows the menu; one press leaves chat contact."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from rich.panel import Panel

from bot.deps import Deps
from models.alerts import open_alerts
from models.consent import consent_history
from models.db import transaction
from models.participants import participant_by_study_id
from sandbox.state import BotMessage

if TYPE_CHECKING:
    from followup.demo import Narrator

WHO = "DEMO-006"


async def withdrawal(say: Narrator, deps: Deps) -> None:
    """DEMO-006 writes "别再发了", leaves chat contact by two presses, and is left in peace."""
    user = await say.enrol_and_link(deps, WHO, enrolled_on=dt.date(2026, 4, 10), biospecimen=True)
    say.step(f'{WHO} writes 别再发了 ("stop sending"): the bot asks, it does not withdraw')
    say.says(WHO, "别再发了")
    await say.sandbox.send_text(user, "别再发了")
    menu = await say.shows(WHO, user)
    for label in ("只停止聊天消息", "是的，退出"):
        say.says(WHO, f"[{label}]")
        await say.sandbox.press(user, menu, menu.button(label))
        await say.sandbox.wait_until(lambda: not say.sandbox.unanswered_callbacks())
        _show_edit(say, menu)
    await say.shows(WHO, user)
    say.step(f"{WHO} writes again: one fixed reply with the team's contact, nothing else")
    say.says(WHO, "你好")
    await say.sandbox.send_text(user, "你好")
    await say.shows(WHO, user)
    _show_coordinator_view(say, deps)


def _show_edit(say: Narrator, message: BotMessage) -> None:
    buttons = "  ".join(f"[{label}]" for label, _ in message.buttons)
    body = message.text + (f"\n\n{buttons}" if buttons else "")
    say.console.print(Panel(body, title=f"{WHO}'s phone (the same message, edited)",
                            title_align="left", width=78))  # fmt: skip


def _show_coordinator_view(say: Narrator, deps: Deps) -> None:
    say.step(f"The coordinator's view: followup consent {WHO}, and the open ADMIN alert")
    with transaction(deps.engine) as session:
        participant = participant_by_study_id(session, WHO)
        assert participant is not None and participant.id is not None
        events = consent_history(session, participant.id)
        alerts = open_alerts(session, kind="withdrawal", participant_id=participant.id)
    for e in events:
        say.console.print(f"  {e.at:%Y-%m-%d %H:%M}  {e.change}  {e.scope}  {e.actor_id}  "
                          f"{e.channel}")  # fmt: skip
    chat = "yes" if participant.chat_contact else "no"
    say.console.print(f"  {WHO}: status {participant.status}, chat contact {chat}; "
                      "visits go on by phone")  # fmt: skip
    for alert in alerts:
        say.console.print(f"  alert {alert.id}: {alert.tier} {alert.kind} — {alert.detail}")
