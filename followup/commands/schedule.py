"""`followup tick`, `followup visits` and `followup visit complete`: the schedule for operators.

`tick` runs one dispatch pass and writes outbox rows; it does not talk to Telegram. The running
bot (`followup run`) delivers whatever the pass queued within seconds, so a tick while the bot
runs behaves exactly like the bot's own minutely pass, and two of them never send twice.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from followup.commands.common import settings_or_exit as _settings
from models.db import make_engine, transaction
from models.participants import participant_by_study_id
from models.tables import Participant, Visit, VisitStatus
from models.visits import VisitClosed, complete_visit, list_visits, visit_by_number
from scheduler.clock import system_clock
from scheduler.dispatch import dispatch_pass

console = Console()
err = Console(stderr=True)
COORDINATOR = "coordinator:cli"


def _instant(value: str | None) -> dt.datetime:
    if value is None:
        return system_clock()
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        err.print(f"--at: not an ISO-8601 instant: {value!r}")
        raise typer.Exit(2) from None
    if at.tzinfo is None:
        err.print("--at needs a time zone, e.g. 2026-04-15T10:00+08:00 or ...Z")
        raise typer.Exit(2)
    return at.astimezone(dt.UTC)


def tick(
    at: Annotated[str | None, typer.Option(help="run as of this ISO-8601 instant")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show, change nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run one dispatch pass (plan, prompts, reminders, missed visits) and print what it did.

    It queues messages in the outbox; the running bot (`followup run`) delivers them.
    """
    settings = _settings()
    now = _instant(at)
    engine = make_engine(settings.database_url)
    report = dispatch_pass(engine, settings, now, dry_run=dry_run)
    engine.dispose()
    if as_json:
        payload = {"at": now.isoformat(), "dry_run": dry_run, "planned": report.planned,
                   "visits_added": report.visits_added, "sent": report.sent,
                   "held": report.held, "missed": report.missed, "cancelled": report.cancelled,
                   "events": [list(e) for e in report.events]}  # fmt: skip
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    verb = "would queue" if dry_run else "queued"
    console.print(f"pass as of {now:%Y-%m-%d %H:%M} UTC{' (dry run)' if dry_run else ''}")
    for study_id, number, event in report.events:
        console.print(f"  {study_id} visit {number}: {event}")
    sent = ", ".join(f"{n} {kind}" for kind, n in sorted(report.sent.items())) or "no messages"
    console.print(
        f"{verb} {sent}; {report.missed} missed, {report.cancelled} cancelled, "
        f"{report.held} held; planned {report.planned} participant(s)"
    )


def _visit_row(visit: Visit, participant: Participant) -> dict[str, Any]:
    return {
        "study_id": participant.study_id, "visit": visit.number,
        "due_date": visit.due_date.isoformat(),
        "window_closes_on": visit.window_closes_on.isoformat(), "status": visit.status,
        "next": visit.stage if visit.next_action_at else None,
        "completed_at": visit.completed_at.isoformat() if visit.completed_at else None,
        "completion_mode": visit.completion_mode,
    }  # fmt: skip


def visits(
    due: Annotated[bool, typer.Option("--due", help="window open today")] = False,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="open past the first reminder")
    ] = False,
    missed: Annotated[bool, typer.Option("--missed", help="window closed unanswered")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List visits (all by default), by due date, in the study's time zone."""
    settings = _settings()
    today = system_clock().astimezone(ZoneInfo(settings.timezone)).date()
    active = [VisitStatus.PLANNED.value, VisitStatus.OPEN.value]
    first = dt.timedelta(days=settings.reminder_days[0] if settings.reminder_days else 0)
    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        if missed:
            found = list_visits(session, statuses=[VisitStatus.MISSED.value])
        elif overdue:
            found = list_visits(session, statuses=[VisitStatus.OPEN.value], due_by=today - first)
        elif due:
            found = list_visits(session, statuses=active, due_by=today)
            found = [(v, p) for v, p in found if v.window_closes_on >= today]
        else:
            found = list_visits(session)
        rows = [_visit_row(v, p) for v, p in found]
    engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("study id", "visit", "due", "window closes", "status", "next", "completed")
    for row in rows:
        done = (
            f"{row['completed_at'][:10]} ({row['completion_mode']})" if row["completed_at"] else ""
        )
        table.add_row(row["study_id"], str(row["visit"]), row["due_date"],
                      row["window_closes_on"], row["status"], row["next"] or "", done)  # fmt: skip
    console.print(table)


def complete(
    study_id: str,
    visit: int,
    mode: Annotated[str, typer.Option(help="phone or clinic")],
    note: Annotated[str | None, typer.Option(help="a short note (no names)")] = None,
) -> None:
    """Record a follow-up done by phone or in clinic; its reminders stop. Audited."""
    if mode not in ("phone", "clinic"):
        err.print("--mode must be phone or clinic")
        raise typer.Exit(2)
    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        with transaction(engine) as session:
            participant = participant_by_study_id(session, study_id)
            found = None
            if participant is not None and participant.id is not None:
                found = visit_by_number(session, participant.id, visit)
            if found is None:
                err.print(f"no visit {visit} for {study_id}")
                raise typer.Exit(1)
            complete_visit(session, visit=found, study_id=study_id, mode=mode,
                           now=system_clock(), actor=COORDINATOR, note=note)  # fmt: skip
    except VisitClosed as exc:
        err.print(f"visit {visit} of {study_id} is already {exc}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(f"{study_id} visit {visit} recorded as completed by {mode}")


def register(app: typer.Typer) -> None:
    """Add the schedule commands to the `followup` command."""
    app.command()(tick)
    app.command()(visits)
    visit_app = typer.Typer(help="Record what happened to one visit.", no_args_is_help=True)
    visit_app.command()(complete)
    app.add_typer(visit_app, name="visit")
