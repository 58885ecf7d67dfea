"""`followup export` beyond answers as CSV: alerts, consent and visits as CSV, REDCap and FHIR.

Called from `followup export` (followup/commands/checkin.py). Large exports show a progress
bar on the terminal (stderr), only when writing to a file or when stdout is a terminal.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.console import Console
from rich.progress import Progress

from followup.exports import (
    fhir_bundle,
    spreadsheet_safe,
    write_redcap,
    write_redcap_dictionary,
)
from models import export_views
from models.checkins import ExportRow, export_rows
from models.db import make_engine, transaction

err = Console(stderr=True)
WHATS = ("answers", "alerts", "consent", "visits")
FORMATS = ("csv", "redcap", "fhir")
PROGRESS_FROM = 1000
_TABLES = {
    "alerts": (export_views.ALERT_COLUMNS, export_views.alert_export),
    "consent": (export_views.CONSENT_COLUMNS, export_views.consent_export),
    "visits": (export_views.VISIT_COLUMNS, export_views.visit_export),
}


@contextmanager
def _output(out: Path | None) -> Iterator[TextIO]:
    if out is None:
        yield sys.stdout
        return
    with out.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def _progress(rows: Sequence[Any], out: Path | None, what: str) -> Iterator[Any]:
    """Yield the rows, with a progress bar when they are many and someone is watching."""
    if len(rows) < PROGRESS_FROM or not (out is not None or sys.stdout.isatty()):
        yield from rows
        return
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"exporting {what}", total=len(rows))
        for row in rows:
            yield row
            progress.advance(task)


def run_export(*, database_url: str, fmt: str, what: str, out: Path | None,
               since: dt.datetime | None, dictionary: Path | None) -> None:  # fmt: skip
    """Write one export; raise typer.Exit(2) for a combination that does not exist."""
    if fmt not in FORMATS or what not in WHATS or (fmt != "csv" and what != "answers"):
        err.print("--format csv|redcap|fhir; --what answers|alerts|consent|visits (csv only)")
        raise typer.Exit(2)
    if dictionary is not None:
        with dictionary.open("w", encoding="utf-8", newline="") as handle:
            write_redcap_dictionary(handle)
        err.print(f"REDCap data dictionary written to {dictionary}")
        if fmt != "redcap":
            return
    engine = make_engine(database_url)
    with transaction(engine) as session:
        if what == "answers":
            answers: list[ExportRow] = export_rows(session, since=since)
        else:
            columns, query = _TABLES[what]
            table = query(session, since=since)
    engine.dispose()
    with _output(out) as handle:
        if what != "answers":
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in _progress(table, out, what):
                writer.writerow([spreadsheet_safe(cell) for cell in row])
            count = len(table)
        elif fmt == "redcap":
            count = write_redcap(_progress(answers, out, what), handle)
        else:
            bundle = fhir_bundle(_progress(answers, out, what))
            handle.write(bundle.model_dump_json(indent=1) + "\n")
            count = len(bundle.entry or [])
    if out is not None:
        err.print(f"{count} {what if fmt == 'csv' else 'records'} written to {out}")
