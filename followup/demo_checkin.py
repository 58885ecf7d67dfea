"""The demo's check-in step: a participant answers by buttons; a daughter reports a death."""

from __future__ import annotations

import datetime as dt
import io
from typing import TYPE_CHECKING

from rich.panel import Panel

from bot.deps import Deps
from followup.commands.checkin import write_csv
from models.checkins import export_rows, open_visit
from models.db import transaction
from models.participants import participant_by_study_id
from sandbox import SandboxUser
from sandbox.state import BotMessage
from scheduler.clock import FrozenClock

if TYPE_CHECKING:
    from followup.demo import Narrator

NO_SYMPTOMS = ["0"] * 10 + ["no"] * 5  # ten more symptoms, then five yes/no warning signs


async def checkin_and_death_report(say: Narrator, deps: Deps) -> None:
    """DEMO-004 completes the 3-month check-in; DEMO-005's daughter reports his death."""
    real_clock = deps.clock
    deps.clock = FrozenClock(dt.datetime(2026, 7, 16, 2, tzinfo=dt.UTC))
    try:
        patient = await _linked(say, deps, "DEMO-004", "Demo")
        daughter = await _linked(say, deps, "DEMO-005", "Daughter")
        await _complete_checkin(say, patient)
        _show_export(say, deps)
        await _report_death(say, daughter)
    finally:
        deps.clock = real_clock


async def _linked(say: Narrator, deps: Deps, study_id: str, name: str) -> SandboxUser:
    """Enrol, link the chat and open visit 1, as enrolment and the schedule would."""
    user = await say.enrol_and_link(deps, study_id, enrolled_on=dt.date(2026, 4, 10), name=name)
    with transaction(deps.engine) as session:
        participant = participant_by_study_id(session, study_id)
        assert participant is not None and participant.id is not None
        open_visit(session, participant_id=participant.id, number=1,
                   due_date=dt.date(2026, 7, 10), window_closes_on=dt.date(2026, 8, 7),
                   now=deps.now())  # fmt: skip
    return user


async def _tap(say: Narrator, who: str, user: SandboxUser, message: BotMessage, code: str,
               *, show: bool = True) -> BotMessage:  # fmt: skip
    """Press the button with this code; print the next message in full, or as one line."""
    data = next(d for _, d in message.buttons if d.endswith(f":{code}"))
    label = next(label for label, d in message.buttons if d == data)
    say.console.print(f"[cyan]{who}[/cyan] presses [{label}]")
    await say.sandbox.press(user, message, data)
    if show:
        return await say.shows(who, user)
    after = say.seen.get(user.id, 0)
    following = await say.sandbox.next_message(user.id, after=after)
    say.seen[user.id] = after + 1
    say.console.print(f"  {following.text.splitlines()[0]}")
    return following


async def _complete_checkin(say: Narrator, user: SandboxUser) -> None:
    who = "DEMO-004"
    say.step("16 July: DEMO-004 types 开始 and answers the 3-month check-in with buttons")
    say.says(who, "开始")
    await say.sandbox.send_text(user, "开始")
    message = await say.shows(who, user)
    for code in ["self", "no"]:
        message = await _tap(say, who, user, message, code)
    for code in ["+chemo", "+immuno"]:
        await _tap_toggle(say, who, user, message, code)
    message = await _tap(say, who, user, message, "~d")
    for code in ["no", "no", "1", "2"]:  # changed, spread, activity, shortness of breath
        message = await _tap(say, who, user, message, code, show=False)
    message = await _tap(say, who, user, message, "1")  # breathlessness and daily life
    for code in [*NO_SYMPTOMS, "7", "no"]:  # then well-being and "call me?"
        message = await _tap(say, who, user, message, code, show=False)
    message = await _tap(say, who, user, message, "~s")
    say.step("The summary: DEMO-004 could change any answer, and submits")
    await _tap(say, who, user, message, "~ok")


async def _tap_toggle(say: Narrator, who: str, user: SandboxUser, message: BotMessage,
                      code: str) -> None:  # fmt: skip
    data = next(d for _, d in message.buttons if d.endswith(f":{code}"))
    say.console.print(f"[cyan]{who}[/cyan] ticks an option")
    await say.sandbox.press(user, message, data)
    await say.sandbox.wait_until(lambda: not say.sandbox.unanswered_callbacks())


def _show_export(say: Narrator, deps: Deps) -> None:
    say.step("The coordinator exports the answers (first rows)")
    say.console.print("$ followup export --format csv")
    with transaction(deps.engine) as session:
        rows = export_rows(session)
    out = io.StringIO()
    write_csv(rows, out)
    say.console.print("\n".join(out.getvalue().splitlines()[:8]), markup=False)


async def _report_death(say: Narrator, user: SandboxUser) -> None:
    who = "DEMO-005's daughter"
    say.step("DEMO-005's daughter, on the linked phone, tells the bot her father has died")
    say.says(who, "开始")
    await say.sandbox.send_text(user, "开始")
    message = await say.shows(who, user)
    message = await _tap(say, who, user, message, "proxy")
    message = await _tap(say, who, user, message, "died")
    say.says(who, "2026年7月")
    await say.sandbox.send_text(user, "2026年7月")
    await say.shows(who, user)
    say.console.print(Panel("No more prompts go to DEMO-005 until a coordinator confirms or "
                            "corrects the report.", width=78))  # fmt: skip
