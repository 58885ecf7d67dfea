"""`followup demo`: the bot end to end in the sandbox, as participants and coordinators see it."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from bot.deps import BotApp, Deps
from bot.replies import sender
from bot.runtime import running
from followup.demo_alerts import coordinator_view
from followup.demo_checkin import checkin_and_death_report
from followup.demo_withdrawal import withdrawal
from followup.settings import load_settings
from models import schema
from models.db import make_engine, transaction
from models.participants import enroll, list_participants, participant_by_study_id
from models.visits import complete_visit, visit_by_number
from sandbox import Sandbox, SandboxUser
from sandbox.state import BotMessage
from scheduler.clock import FrozenClock, system_clock
from scheduler.dispatch import dispatch_pass
from study.invites import deep_link

DEMO_PARTICIPANTS = [
    ("DEMO-001", "zh", False),
    ("DEMO-002", "en", True),
    ("DEMO-003", "zh", True),
]


class Narrator:
    """Prints what each person does and what the bot shows them."""

    def __init__(self, console: Console, sandbox: Sandbox) -> None:
        self.console, self.sandbox = console, sandbox
        self.seen: dict[int, int] = {}

    def step(self, text: str) -> None:
        self.console.rule(f"[bold]{text}")

    def says(self, who: str, text: str) -> None:
        self.console.print(f"[cyan]{who}[/cyan] sends: [italic]{text}[/italic]")

    async def shows(self, who: str, user: SandboxUser) -> BotMessage:
        after = self.seen.get(user.id, 0)
        message = await self.sandbox.next_message(user.id, after=after)
        self.seen[user.id] = after + 1
        buttons = "  ".join(f"[{label}]" for label, _ in message.buttons)
        body = message.text + (f"\n\n{buttons}" if buttons else "")
        self.console.print(Panel(body, title=f"{who}'s phone", title_align="left", width=78))
        return message

    async def enrol_and_link(
        self, deps: Deps, study_id: str, *, enrolled_on: dt.date, biospecimen: bool = False,
        name: str = "Demo",
    ) -> SandboxUser:  # fmt: skip
        """Enrol a made-up participant and link a new sandbox chat (greeting consumed)."""
        with transaction(deps.engine) as session:
            issued = enroll(
                session, study_id=study_id, enrolled_on=enrolled_on, language="zh",
                timezone=deps.settings.timezone, biospecimen=biospecimen, now=deps.now(),
                invite_ttl=dt.timedelta(days=30), actor="coordinator:demo",
            )  # fmt: skip
        user = self.sandbox.add_user(first_name=name, language_code="zh")
        await self.sandbox.send_command(user, "start", issued.token)
        await self.sandbox.next_message(user.id, after=0)
        self.seen[user.id] = 1
        return user


async def run_demo(console: Console, *, keep: bool = False) -> None:
    workdir = Path("demo-output") if keep else Path(tempfile.mkdtemp(prefix="followup-demo-"))
    workdir.mkdir(exist_ok=True)
    database = workdir / "demo.db"
    database.unlink(missing_ok=True)
    try:
        async with Sandbox() as sandbox:
            await _play(console, sandbox, database)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    console.print(f"\nDemo finished. Database: {database if keep else 'deleted (use --keep)'}")


async def _play(console: Console, sandbox: Sandbox, database: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite:///{database}",
        telegram_api_url=sandbox.api_url,
        telegram_token=sandbox.token,
        bot_username=sandbox.state.bot_username,
    )
    engine = make_engine(settings.database_url)
    schema.upgrade(engine)
    deps = Deps(settings=settings, engine=engine)
    say = Narrator(console, sandbox)

    say.step("A coordinator enrols three made-up participants")
    tokens: dict[str, str] = {}
    with transaction(engine) as session:
        for study_id, language, biospecimen in DEMO_PARTICIPANTS:
            issued = enroll(
                session, study_id=study_id, enrolled_on=dt.date(2026, 1, 15), language=language,
                timezone=settings.timezone, biospecimen=biospecimen, now=system_clock(),
                invite_ttl=dt.timedelta(days=settings.invite_ttl_days), actor="coordinator:demo",
            )  # fmt: skip
            tokens[study_id] = issued.token
            link = deep_link(settings.bot_username, issued.token)
            console.print(f"$ followup enroll {study_id} --enrolled-on 2026-01-15 "
                          f"--language {language}\n  {link}")  # fmt: skip

    async with running(
        deps, token=settings.require_token(), poll_timeout=1, with_scheduler=False
    ) as app:
        zhang = sandbox.add_user(first_name="Demo", language_code="zh")
        say.step("DEMO-001 opens the invite link on their phone")
        say.says("DEMO-001", f"/start {tokens['DEMO-001'][:6]}…")
        await sandbox.send_command(zhang, "start", tokens["DEMO-001"])
        await say.shows("DEMO-001", zhang)

        say.step("DEMO-001 asks for help, then switches to English")
        await sandbox.send_command(zhang, "help")
        await say.shows("DEMO-001", zhang)
        await sandbox.send_command(zhang, "language")
        await say.shows("DEMO-001", zhang)

        stranger = sandbox.add_user(first_name="Stranger", language_code="en")
        say.step("Someone outside the study tries a guessed token, then DEMO-001's used one")
        await sandbox.send_command(stranger, "start", "guessed-token-123")
        await say.shows("stranger", stranger)
        await sandbox.send_command(stranger, "start", tokens["DEMO-001"])
        await say.shows("stranger", stranger)

        smith = sandbox.add_user(first_name="Demo", language_code="en")
        say.step("DEMO-002 links their chat (English)")
        await sandbox.send_command(smith, "start", tokens["DEMO-002"])
        await say.shows("DEMO-002", smith)
        await _months_pass(say, deps, app, {"DEMO-001": zhang, "DEMO-002": smith})
        await checkin_and_death_report(say, deps)
        await withdrawal(say, deps)
        await coordinator_view(say, deps, app, database.parent)

    say.step("The coordinator's view: followup participants")
    with transaction(engine) as session:
        for p in list_participants(session):
            linked = "linked" if p.telegram_user_id else "not linked"
            console.print(f"  {p.study_id}  {p.status:8}  {p.language}  {linked}")
    engine.dispose()


async def _months_pass(
    say: Narrator, deps: Deps, app: BotApp, users: dict[str, SandboxUser]
) -> None:
    """Simulated months: the dispatch pass and the sender on a frozen clock (issue 3)."""
    coordinator = say.sandbox.add_user(first_name="Coordinator", language_code="zh")
    real_clock, real_settings = deps.clock, deps.settings
    deps.clock = clock = FrozenClock(dt.datetime(2026, 4, 14, 2, tzinfo=dt.UTC))
    deps.settings = deps.settings.model_copy(update={"coordinator_chat_id": coordinator.id})
    outbox = sender(app)

    async def pass_at(when: dt.datetime, title: str) -> None:
        clock.set(when)
        say.step(title)
        say.console.print(f"$ followup tick --at {when.isoformat()}")
        await asyncio.to_thread(dispatch_pass, deps.engine, deps.settings, when)
        await outbox.flush()

    try:
        await pass_at(dt.datetime(2026, 4, 15, 2, tzinfo=dt.UTC),
                      "15 April 2026, 10:00 in Beijing: the 3-month prompts go out")  # fmt: skip
        for study_id, user in users.items():
            await say.shows(study_id, user)
        await pass_at(dt.datetime(2026, 4, 18, 2, tzinfo=dt.UTC),
                      "18 April: no answer yet, so a first reminder")  # fmt: skip
        for study_id, user in users.items():
            await say.shows(study_id, user)
        say.step("A coordinator reaches DEMO-002 by phone and records the visit")
        say.console.print("$ followup visit complete DEMO-002 1 --mode phone")
        with transaction(deps.engine) as session:
            participant = participant_by_study_id(session, "DEMO-002")
            assert participant is not None and participant.id is not None
            visit = visit_by_number(session, participant.id, 1)
            assert visit is not None
            complete_visit(session, visit=visit, study_id="DEMO-002", mode="phone",
                           now=clock(), actor="coordinator:demo")  # fmt: skip
        await pass_at(dt.datetime(2026, 4, 22, 2, tzinfo=dt.UTC),
                      "22 April: the second reminder, to DEMO-001 only")  # fmt: skip
        await say.shows("DEMO-001", users["DEMO-001"])
        await pass_at(dt.datetime(2026, 4, 30, 2, tzinfo=dt.UTC),
                      "30 April: the window closed at midnight; a coordinator hears")  # fmt: skip

        # DEMO-001, and DEMO-003, who never linked a chat (other coordinator news is skipped).
        def handed_over() -> list[BotMessage]:
            sent = say.sandbox.messages_to(coordinator.id)
            return [m for m in sent if m.text.startswith("[ADMIN]")]

        await say.sandbox.wait_until(lambda: len(handed_over()) >= 2)
        for message in handed_over():
            say.console.print(Panel(message.text, title="the coordinator's phone",
                                    title_align="left", width=78))  # fmt: skip
        say.step("DEMO-002 asks when the next check-in is")
        say.says("DEMO-002", "/next")
        await say.sandbox.send_command(users["DEMO-002"], "next")
        await say.shows("DEMO-002", users["DEMO-002"])
    finally:
        deps.clock, deps.settings = real_clock, real_settings
