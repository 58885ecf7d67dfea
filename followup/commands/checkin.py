"""`followup export` (answers in long format) and `followup texts` (the ethics document)."""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, TextIO
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from followup.commands.common import settings_or_exit as _settings
from followup.exports import spreadsheet_safe
from messages.ethics import MissingSample, document
from messages.instruments import definition, texts
from messages.render import LANGUAGES
from models.checkins import ExportRow, export_rows
from models.db import make_engine, transaction

err = Console(stderr=True)

COLUMNS = ("study_id", "visit", "due_date", "instrument_version", "item", "value", "value_label",
           "answered_at", "respondent", "mode", "checkin_status")  # fmt: skip
OUT_HELP = "file to write; default stdout"
LABEL_LANGUAGE = "en"  # value labels for analysis are in English, like the item ids


def value_label(row: ExportRow) -> str:
    """The English label of a coded answer; empty for numbers, dates and free text."""
    q = definition(row.version, row.instrument)
    item = q.by_id.get(row.item)
    if item is None or not item.codes() or row.value == "":
        return ""
    return texts(row.version, LABEL_LANGUAGE, row.instrument).answer(item, row.value)


def write_csv(rows: list[ExportRow], out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([spreadsheet_safe(cell) for cell in (
            row.study_id, row.visit, row.due_date.isoformat(),
            f"{row.instrument}-v{row.version}", row.item, row.value, value_label(row),
            row.answered_at.astimezone(dt.UTC).isoformat(), row.respondent or "", row.mode,
            row.checkin_status,
        )])  # fmt: skip


def export(
    fmt: Annotated[str, typer.Option("--format", help="csv, redcap or fhir")],
    out: Annotated[Path | None, typer.Option("--out", help=OUT_HELP)] = None,
    since: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="only answers given on or after YYYY-MM-DD"),
    ] = None,
    what: Annotated[str, typer.Option(help="csv: answers, alerts, consent or visits")] = "answers",
    dictionary: Annotated[
        Path | None, typer.Option(help="also write a REDCap data dictionary to this file")
    ] = None,
) -> None:
    """Write every standing check-in answer, one row per answer (no Telegram ids, no names)."""
    settings = _settings()
    start = None
    if since is not None:  # the day starts in the study's time zone
        start = since.replace(tzinfo=ZoneInfo(settings.timezone)).astimezone(dt.UTC)
    if fmt != "csv" or what != "answers" or dictionary is not None:  # issue 5's formats
        from followup.commands.exports import run_export

        run_export(database_url=settings.database_url, fmt=fmt, what=what, out=out,
                   since=start, dictionary=dictionary)  # fmt: skip
        return
    engine = make_engine(settings.database_url)
    with transaction(engine) as session:
        rows = export_rows(session, since=start)
    engine.dispose()
    if out is None:
        write_csv(rows, sys.stdout)
        return
    with out.open("w", encoding="utf-8", newline="") as handle:
        write_csv(rows, handle)
    err.print(f"{len(rows)} answers written to {out}")


def texts_document(
    language: Annotated[str, typer.Option(help="zh, en or all")] = "all",
    fmt: Annotated[str, typer.Option("--format", help="html or md")] = "md",
    out: Annotated[Path | None, typer.Option("--out", help=OUT_HELP)] = None,
) -> None:
    """Render every participant-facing text, each questionnaire version included, for approval."""
    if language not in (*LANGUAGES, "all"):
        err.print("--language must be zh, en or all")
        raise typer.Exit(2)
    if fmt not in ("html", "md"):
        err.print("--format must be html or md")
        raise typer.Exit(2)
    languages = LANGUAGES if language == "all" else (language,)
    try:
        text = document(languages, fmt)
    except MissingSample as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    err.print(f"texts written to {out}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("texts")(texts_document)
