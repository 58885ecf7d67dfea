"""The demo shows a check-in completed by buttons and a caregiver reporting a death."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from followup.demo import run_demo


async def test_demo_shows_a_completed_checkin_and_a_reported_death(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FOLLOWUP_TELEGRAM_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    buffer = io.StringIO()
    await run_demo(Console(file=buffer, width=120), keep=False)
    shown = buffer.getvalue()
    assert "今天是谁在回答？" in shown
    assert "请核对您的回答。" in shown
    assert "谢谢您。您的回答已经发送给研究团队。" in shown
    assert "DEMO-004,1,2026-07-10,checkin-v1,respondent,self" in shown
    assert "我们深感悲痛" in shown
    assert "DEMO-005  death_reported" in shown
