"""The README's demo command runs end to end in the sandbox without a token."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from followup.demo import run_demo


async def test_demo_runs_and_shows_what_participants_see(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("FOLLOWUP_TELEGRAM_TOKEN", raising=False)
    monkeypatch.chdir(str(tmp_path))
    buffer = io.StringIO()
    await run_demo(Console(file=buffer, width=100), keep=False)
    shown = buffer.getvalue()
    assert "北京协和医院随访研究团队" in shown  # the Chinese greeting
    assert "only for invited study participants" in shown  # the neutral reply to a stranger
    assert "Demo finished" in shown
    assert "acknowledged by coordinator:" in shown and "redcap.csv" in shown  # issue 5
