"""The demo shows prompts, reminders and the missed-visit hand-over over simulated months."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from followup.demo import run_demo


async def test_demo_shows_prompts_reminders_and_a_missed_visit_over_simulated_months(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FOLLOWUP_TELEGRAM_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    buffer = io.StringIO()
    await run_demo(Console(file=buffer, width=100), keep=False)
    shown = buffer.getvalue()
    assert "Your 3-month check-in from the study team is ready." in shown
    assert shown.count("A reminder: your 3-month check-in") == 3
    assert "[ADMIN]" in shown and "DEMO-003" in shown
    assert "Your next check-in is on 15 July 2026." in shown
