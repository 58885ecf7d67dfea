"""What every `followup` command shares: the consoles and loading settings or exiting."""

from __future__ import annotations

import typer
from rich.console import Console

from followup.settings import Settings, SettingsError, load_settings

console = Console()
err = Console(stderr=True)
COORDINATOR = "coordinator:cli"


def settings_or_exit() -> Settings:
    """The validated settings, or exit 2 with a message naming the bad setting."""
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
