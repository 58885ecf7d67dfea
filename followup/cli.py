"""The `followup` command: the operator's interface to the bot and its database."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from followup.commands.common import settings_or_exit as _settings
from followup.logs import configure_logging
from followup.settings import Settings, SettingsError, load_settings
from models import schema
from models.db import make_engine, transaction
from models.participants import (
    DuplicateStudyId,
    UnknownParticipant,
    issue_invite,
    list_participants,
)
from models.participants import (
    enroll as enroll_participant,
)
from scheduler.clock import system_clock
from study.invites import deep_link

app = typer.Typer(help="Follow-up contact bot for the PUMCH ES-SCLC cohort.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
COORDINATOR = "coordinator:cli"


@app.command()
def init() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    engine = make_engine(_settings().database_url)
    schema.upgrade(engine)
    console.print(f"schema at {', '.join(sorted(schema.current_revisions(engine)))}")


@app.command()
def enroll(
    study_id: str,
    enrolled_on: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="YYYY-MM-DD")],
    language: Annotated[str, typer.Option(help="zh or en")] = "zh",
    timezone: Annotated[str | None, typer.Option(help="IANA time zone")] = None,
    biospecimen: Annotated[bool, typer.Option("--biospecimen/--no-biospecimen")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record a participant and print their single-use invite."""
    settings = _settings()
    if language not in ("zh", "en"):
        err.print("--language must be zh or en")
        raise typer.Exit(2)
    zone = timezone or settings.timezone
    try:
        load_settings(timezone=zone)
    except SettingsError:
        err.print(f"--timezone: unknown time zone {zone!r}")
        raise typer.Exit(2) from None
    engine = make_engine(settings.database_url)
    try:
        with transaction(engine) as session:
            invite = enroll_participant(
                session,
                study_id=study_id,
                enrolled_on=enrolled_on.date(),
                language=language,
                timezone=zone,
                biospecimen=biospecimen,
                now=system_clock(),
                invite_ttl=dt.timedelta(days=settings.invite_ttl_days),
                actor=COORDINATOR,
            )
    except DuplicateStudyId:
        err.print(f"{study_id} is already enrolled; use `followup invite {study_id}`")
        raise typer.Exit(1) from None
    _print_invite(invite.study_id, invite.token, invite.expires_at, settings, as_json)


@app.command()
def invite(study_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Issue a fresh invite for a participant and revoke the old one."""
    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        with transaction(engine) as session:
            issued = issue_invite(
                session,
                study_id=study_id,
                now=system_clock(),
                invite_ttl=dt.timedelta(days=settings.invite_ttl_days),
                actor=COORDINATOR,
            )
    except UnknownParticipant:
        err.print(f"no participant {study_id}")
        raise typer.Exit(1) from None
    _print_invite(issued.study_id, issued.token, issued.expires_at, settings, as_json)


def _print_invite(
    study_id: str, token: str, expires_at: dt.datetime, settings: Settings, as_json: bool
) -> None:
    link = deep_link(settings.bot_username, token)
    if as_json:
        payload = {"study_id": study_id, "token": token, "link": link,
                   "expires_at": expires_at.isoformat()}  # fmt: skip
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    console.print(f"{study_id}: invite valid until {expires_at:%Y-%m-%d %H:%M} UTC")
    console.print(link, soft_wrap=True)


@app.command()
def participants(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List participants with their status and whether their chat is linked."""
    engine = make_engine(_settings().database_url)
    with transaction(engine) as session:
        rows = [
            {"study_id": p.study_id, "status": p.status, "linked": p.telegram_user_id is not None,
             "language": p.language, "timezone": p.timezone,
             "enrolled_on": p.enrolled_on.isoformat(), "biospecimen": p.biospecimen}
            for p in list_participants(session)
        ]  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        return
    table = Table("study id", "status", "linked", "language", "enrolled on", "biospecimen")
    for row in rows:
        cells = [row[k] for k in ("study_id", "status", "linked", "language", "enrolled_on",
                                  "biospecimen")]  # fmt: skip
        table.add_row(*(("yes" if c else "no") if isinstance(c, bool) else str(c) for c in cells))
    console.print(table)


@app.command()
def run(
    webhook: Annotated[
        str | None, typer.Option(help="serve by webhook at this public https URL")
    ] = None,
    listen: Annotated[str, typer.Option(help="HOST:PORT the webhook server binds")] = (
        "127.0.0.1:8443"
    ),
) -> None:
    """Start the bot (long polling, or --webhook) and the scheduler; stop with Ctrl-C."""
    from bot.deps import Deps
    from bot.runtime import serve
    from bot.webhook import WebhookConfig

    settings = _settings()
    try:
        token = settings.require_token()
        config = None
        if webhook is not None:
            host, _, port = listen.rpartition(":")
            if not host or not port.isdigit():
                raise SettingsError("--listen must be HOST:PORT, e.g. 127.0.0.1:8443")
            config = WebhookConfig(url=webhook, host=host, port=int(port))
            if settings.webhook_secret is not None:
                secret = settings.webhook_secret.get_secret_value()
                config = dataclasses.replace(config, secret=secret)
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    configure_logging()
    engine = make_engine(settings.database_url)
    schema.upgrade(engine)
    asyncio.run(serve(Deps(settings=settings, engine=engine), token=token, webhook=config))


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="keep the demo database in ./demo-output")] = False,
) -> None:
    """Show the bot end to end in the sandbox, on a throwaway SQLite database; no token needed."""
    from followup.demo import run_demo

    asyncio.run(run_demo(console, keep=keep))


def _register_features() -> None:
    """Feature commands live in followup/commands/; register each module here, in order."""
    from followup.commands import schedule

    schedule.register(app)
    from followup.commands import checkin

    checkin.register(app)
    from followup.commands import consent

    consent.register(app)
    from followup.commands import alerts

    alerts.register(app)


_register_features()


def main() -> None:
    app()
