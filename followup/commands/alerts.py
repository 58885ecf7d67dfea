"""`followup alerts`, `alert ack|resolve`, `participant` and `death confirm|reject`: coordinators.

Every change is made as `coordinator:cli` and audited; output names study ids, never Telegram ids.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from followup.commands.common import settings_or_exit as _settings
from models import alert_actions
from models.coordinator_views import alert_rows, timeline
from models.db import make_engine, transaction
from models.deaths import DeathError, decide_death
from models.participants import participant_by_study_id
from scheduler.clock import system_clock

console = Console()
err = Console(stderr=True)
COORDINATOR = "coordinator:cli"
alert_app = typer.Typer(help="Acknowledge or resolve one alert.", no_args_is_help=True)
death_app = typer.Typer(help="Confirm or reject a reported death.", no_args_is_help=True)


def list_alerts(
    only_open: Annotated[
        bool, typer.Option("--open", help="only alerts not yet resolved")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List alerts with their tier, state, study id and visit."""
    engine = make_engine(_settings().database_url)
    with transaction(engine) as session:
        rows = alert_rows(session, only_open=only_open)
    engine.dispose()
    data: list[dict[str, Any]] = [
        {"id": r.id, "tier": r.tier, "status": r.status, "kind": r.kind,
         "study_id": r.study_id, "visit": r.visit, "created_at": r.created_at.isoformat()}
        for r in rows
    ]  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    table = Table("id", "tier", "status", "kind", "study id", "visit", "raised (UTC)")
    for r in rows:
        style = {"RED": "bold red", "AMBER": "yellow"}.get(r.tier)
        raised = f"{r.created_at:%Y-%m-%d %H:%M}"
        cells = (str(r.id), r.tier, r.status, r.kind, r.study_id, str(r.visit or ""), raised)
        table.add_row(*cells, style=style)
    console.print(table)


def _handle(alert_id: int, *, resolve: bool, note: str | None) -> None:
    engine = make_engine(_settings().database_url)
    now = system_clock()
    with transaction(engine) as session:
        if resolve:
            handled = alert_actions.resolve(session, alert_id=alert_id, by=COORDINATOR,
                                            note=note or "", now=now)  # fmt: skip
        else:
            handled = alert_actions.acknowledge(session, alert_id=alert_id, by=COORDINATOR,
                                                now=now)  # fmt: skip
    engine.dispose()
    if handled.alert is None:
        err.print(f"no alert {alert_id}")
        raise typer.Exit(1)
    if not handled.changed:
        err.print(f"alert {alert_id} is already {handled.alert.status}; nothing changed")
        raise typer.Exit(1)
    console.print(f"alert {alert_id}: {handled.alert.status}")


@alert_app.command("ack")
def ack(alert_id: int) -> None:
    """Acknowledge an alert (stops a RED alert's re-notices)."""
    _handle(alert_id, resolve=False, note=None)


@alert_app.command("resolve")
def resolve(
    alert_id: int,
    note: Annotated[
        str | None, typer.Option("--note", help="a short note of what was done")
    ] = None,
) -> None:
    """Resolve an alert, with a short note."""
    _handle(alert_id, resolve=True, note=note)


def participant(study_id: str) -> None:
    """One participant's timeline: visits, answers in brief, alerts and consent events."""
    engine = make_engine(_settings().database_url)
    with transaction(engine) as session:
        found = participant_by_study_id(session, study_id)
        events = timeline(session, found) if found is not None else []
        status = found.status if found is not None else ""
    engine.dispose()
    if found is None:
        err.print(f"no participant {study_id}")
        raise typer.Exit(1)
    table = Table("when (UTC)", "what", "detail", title=f"{study_id} ({status})")
    styles = {"alert": "red", "consent": "magenta", "checkin": "cyan"}
    for event in events:
        table.add_row(f"{event.at:%Y-%m-%d %H:%M}", event.what, event.text,
                      style=styles.get(event.what))  # fmt: skip
    console.print(table)


def _decide(study_id: str, *, confirm: bool, note: str | None) -> None:
    engine = make_engine(_settings().database_url)
    try:
        with transaction(engine) as session:
            decision = decide_death(session, study_id=study_id, confirm=confirm,
                                    by=COORDINATOR, now=system_clock(), note=note)  # fmt: skip
    except DeathError as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(
        f"{decision.study_id}: {decision.status}; {decision.cancelled_visits} visits and "
        f"{decision.cancelled_messages} messages cancelled, {decision.resolved_alerts} alerts "
        "resolved"
    )


@death_app.command("confirm")
def confirm(study_id: str, note: Annotated[str | None, typer.Option("--note")] = None) -> None:
    """Confirm a death: no contact of any kind, ever again."""
    _decide(study_id, confirm=True, note=note)


@death_app.command("reject")
def reject(study_id: str, note: Annotated[str | None, typer.Option("--note")] = None) -> None:
    """Reject a death report: the participant is active again."""
    _decide(study_id, confirm=False, note=note)


def register(app: typer.Typer) -> None:
    app.command("alerts")(list_alerts)
    app.add_typer(alert_app, name="alert")
    app.command("participant")(participant)
    app.add_typer(death_app, name="death")
