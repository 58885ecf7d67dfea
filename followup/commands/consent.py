"""`followup withdraw`, `followup consent` (history, restore) and `followup audit`."""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.core import TyperGroup

from followup.commands.common import settings_or_exit as _settings
from messages.render import render
from models import audit
from models.consent import (
    Notify,
    consent_history,
    consent_state,
    restore,
    with_sends_settled,
    withdraw,
)
from models.db import make_engine, transaction
from models.participants import participant_by_study_id
from models.tables import Participant
from scheduler.clock import system_clock
from study.consent import ConsentError, Samples, Scope

console = Console()
err = Console(stderr=True)
COORDINATOR = "coordinator:cli"
SAMPLES_HELP = "biospecimen only: destroy or keep the samples already collected"
REASON_HELP = "what the participant said, if anything (no reason is needed)"
AUDIT_COLUMNS = ["id", "at", "actor", "action", "entity", "entity_id", "before", "after",
                 "prev_hash", "hash"]  # fmt: skip


class Channel(StrEnum):
    """How the coordinator received it."""

    PHONE = "phone"
    IN_PERSON = "in_person"
    CLI = "cli"


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class _ConsentGroup(TyperGroup):
    """`consent STUDY_ID` shows the history; `consent restore STUDY_ID ...` re-consents."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


consent_app = typer.Typer(cls=_ConsentGroup, no_args_is_help=True,
                          help="A participant's consent history, and re-consent.")  # fmt: skip
audit_app = typer.Typer(no_args_is_help=True, help="Check and export the hash-chained audit log.")


def _engine() -> Engine:
    return make_engine(_settings().database_url)


def _participant(session: Session, study_id: str) -> Participant:
    participant = participant_by_study_id(session, study_id)
    if participant is None or participant.id is None:
        err.print(f"no participant {study_id}")
        raise typer.Exit(1)
    return participant


def withdraw_command(
    study_id: str,
    scope: Annotated[Scope, typer.Option(help="contact, biospecimen or study")],
    samples: Annotated[Samples | None, typer.Option(help=SAMPLES_HELP)] = None,
    reason: Annotated[str | None, typer.Option(help=REASON_HELP)] = None,
    channel: Annotated[Channel, typer.Option(help="how it was received")] = Channel.PHONE,
) -> None:  # fmt: skip
    """Record a withdrawal received by phone or in person: same effect and audit as in chat."""
    settings = _settings()
    engine, now = make_engine(settings.database_url), system_clock()
    notify = Notify(settings.coordinator_chat_id, settings.coordinator_language)
    with transaction(engine) as session:
        participant_id = _participant(session, study_id).id
    assert participant_id is not None

    def work(session: Session, wait_for_sends: bool) -> Any:
        return withdraw(
            session, participant_id=participant_id, scope=scope, samples=samples,
            actor="coordinator", actor_id=COORDINATOR, channel=channel.value, now=now,
            render=render, team_contact=settings.team_contact, notify=notify,
            reason=reason, wait_for_sends=wait_for_sends,
        )  # fmt: skip

    try:
        outcome = with_sends_settled(engine, work)
    except ConsentError as exc:
        err.print(f"{study_id}: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"{study_id}: withdrawn from {scope.value}; {outcome.cancelled_messages} message(s) and "
        f"{outcome.cancelled_visits} visit(s) cancelled; coordinators alerted"
        + ("; confirmation queued for the chat" if outcome.confirmation_id else "")
    )


@consent_app.command("show")
def show_consent(study_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a participant's consent events, oldest first, and where they stand now."""
    with transaction(_engine()) as session:
        participant = _participant(session, study_id)
        assert participant.id is not None
        events = consent_history(session, participant.id)
        state = consent_state(session, participant)
    if as_json:
        rows = [e.model_dump(mode="json", exclude={"participant_id"}) for e in events]
        sys.stdout.write(json.dumps({"study_id": study_id, "status": participant.status,
                                     "events": rows}, ensure_ascii=False) + "\n")  # fmt: skip
        return
    table = Table("at (UTC)", "change", "scope", "who", "channel", "samples", "note")
    for e in events:
        table.add_row(f"{e.at:%Y-%m-%d %H:%M}", e.change, e.scope, e.actor_id, e.channel,
                      e.samples or "", e.note or "")  # fmt: skip
    console.print(table)
    console.print(
        f"{study_id}: status {participant.status}; in study {_yes(state.in_study)}, "
        f"chat contact {_yes(state.chat_allowed)}, sample part {_yes(state.biospecimen)}"
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@consent_app.command("restore")
def restore_consent(
    study_id: str,
    scope: Annotated[Scope, typer.Option(help="contact, biospecimen or study")],
    note: Annotated[str, typer.Option(help="how and when the participant re-consented")],
    channel: Annotated[Channel, typer.Option(help="how it was received")] = Channel.IN_PERSON,
) -> None:
    """Record a re-consent (coordinators only; the note is mandatory)."""
    engine = _engine()
    try:
        with transaction(engine) as session:
            participant = _participant(session, study_id)
            assert participant.id is not None
            restore(session, participant_id=participant.id, scope=scope, actor_id=COORDINATOR,
                    channel=channel.value, note=note, now=system_clock())  # fmt: skip
    except ConsentError as exc:
        err.print(f"{study_id}: {exc}")
        raise typer.Exit(1) from None
    console.print(f"{study_id}: re-consent to {scope.value} recorded")


@audit_app.command("verify")
def verify_audit() -> None:
    """Check the hash chain; report the first row altered, deleted or out of order."""
    with transaction(_engine()) as session:
        rows = audit.all_events(session)
    problem = audit.verify_chain(rows)
    if problem is not None:
        err.print(f"[red]audit chain broken:[/red] {problem.describe()}")
        raise typer.Exit(1)
    last = rows[-1].hash if rows else audit.GENESIS
    console.print(f"audit chain intact: {len(rows)} rows; last hash {last}")


@audit_app.command("export")
def export_audit(
    fmt: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.CSV,
    out: Annotated[Path | None, typer.Option(help="file to write; default stdout")] = None,
) -> None:
    """Write the audit log as CSV or JSON lines."""
    with transaction(_engine()) as session:
        rows = [audit.export_row(e) for e in audit.all_events(session)]
    if out is None:
        _write(sys.stdout, rows, fmt)
        return
    with out.open("w", encoding="utf-8", newline="") as stream:
        _write(stream, rows, fmt)
    err.print(f"{len(rows)} audit rows written to {out}")


def _write(stream: TextIO, rows: list[dict[str, Any]], fmt: ExportFormat) -> None:
    if fmt is ExportFormat.JSONL:
        for row in rows:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(stream, fieldnames=AUDIT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


def register(app: typer.Typer) -> None:
    app.command("withdraw")(withdraw_command)
    app.add_typer(consent_app, name="consent")
    app.add_typer(audit_app, name="audit")
