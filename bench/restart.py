"""Restart recovery: from starting the bot to the first overdue prompt sent, and to the last.

The subject's database holds 100,000 future prompts and 1,000 that fell due two hours before
the start (the bot was down at the send hour); the baseline's holds a single participant with one
prompt due in the same way. Both start the real bot with its periodic passes, as `followup run`
does, against the sandbox with Telegram's limits on, and with a clock that runs from the same
instant. Rows are written in bulk into a template database that each run copies.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import col

from bench.runs import Paired, alternate, median
from bench.setup import add_participants, scratch
from bot.deps import Deps
from bot.replies import sender
from bot.runtime import running
from followup.settings import Settings
from models.db import make_engine, transaction
from models.tables import Participant
from models.visits import insert_visits
from sandbox import Sandbox
from scheduler.dispatch import rules_from
from study.visits import PROMPT, first_action_at, plan_visits

START = dt.datetime(2026, 4, 15, 4, tzinfo=dt.UTC)  # 12:00 in Shanghai, two hours after 10:00
DUE_TODAY = dt.date(2026, 1, 15)  # enrolled then: visit 1 (3 months) is due on START's day
FIRST_USER_ID = 500_001  # a fresh sandbox numbers its users from here
ZONE = "Asia/Shanghai"


class RunningClock:
    """Real time, but starting from `start`: retries after a 429 fall due as they would."""

    def __init__(self, start: dt.datetime) -> None:
        self.start, self.origin = start, time.monotonic()

    def __call__(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=time.monotonic() - self.origin)


@dataclass
class RecoveryFigures:
    overdue: int
    future: int
    first_seconds: float  # start to the first overdue prompt recorded by the sandbox
    all_seconds: float  # start to the last of them
    too_many_requests: int


def _visit_rows(
    ids: list[tuple[int, dt.date]], settings: Settings, *, limit: int | None
) -> list[dict[str, Any]]:
    rules, zone = rules_from(settings), ZoneInfo(ZONE)
    rows: list[dict[str, Any]] = []
    for participant_id, enrolled_on in ids:
        for visit in plan_visits(enrolled_on, rules):
            if limit is not None and len(rows) == limit:
                return rows
            rows.append({"participant_id": participant_id, "number": visit.number,
                         "due_date": visit.due_date, "window_closes_on": visit.window_closes_on,
                         "status": "planned", "stage": PROMPT, "created_at": START,
                         "next_action_at": first_action_at(visit.due_date, zone, rules),
                         })  # fmt: skip
    return rows


def build(workdir: Path, *, overdue: int, future: int) -> tuple[Path, Settings]:
    """A database with `overdue` prompts due before START and `future` prompts after it.

    The overdue participants are sandbox users FIRST_USER_ID onwards; the others never get a
    message during the run. Everyone is marked planned, so the first pass plans nobody.
    """
    engine, settings = scratch(workdir)
    key = rules_from(settings).plan_key()
    per_person = len(plan_visits(DUE_TODAY, rules_from(settings)))
    later = [START.date() - dt.timedelta(days=89 - n % 90) for n in range(future // 9 + 1)]
    enrolled = [DUE_TODAY] * overdue + later
    chat_ids = [FIRST_USER_ID + n for n in range(overdue)] + [
        20_000_000 + n for n in range(len(later))
    ]
    add_participants(engine, enrolled, chat_ids=chat_ids, now=START - dt.timedelta(days=100),
                     plan_key=key)  # fmt: skip
    with transaction(engine) as session:
        found = session.execute(select(col(Participant.id), col(Participant.enrolled_on)))
        ids = sorted((int(i), d) for i, d in found)
    future_of_overdue = overdue * (per_person - 1)
    rows = _visit_rows(ids[:overdue], settings, limit=None)
    rows += _visit_rows(ids[overdue:], settings, limit=future - future_of_overdue)
    for start in range(0, len(rows), 20_000):
        with transaction(engine) as session:
            insert_visits(session, rows[start : start + 20_000])
    engine.dispose()
    return workdir / "bench.db", settings


async def _start(
    template: Path, settings: Settings, *, overdue: int, future: int
) -> RecoveryFigures:
    with tempfile.TemporaryDirectory(prefix="followup-restart-") as workdir:
        path = Path(workdir) / "run.db"
        shutil.copy(template, path)
        async with Sandbox() as sandbox:
            sandbox.limits.enabled = True
            users = [sandbox.add_user() for _ in range(overdue)]
            assert users[0].id == FIRST_USER_ID
            run_settings = settings.model_copy(update={
                "database_url": f"sqlite:///{path}", "telegram_api_url": sandbox.api_url,
                "telegram_token": sandbox.token,
            })  # fmt: skip
            engine = make_engine(run_settings.database_url)
            clock = RunningClock(START)
            deps = Deps(settings=run_settings, engine=engine, clock=clock)
            sent = sandbox.state.sent
            async with running(deps, token=sandbox.token, poll_timeout=1) as app:
                await sandbox.wait_until(lambda: len(sent) >= 1, timeout=120)
                await sandbox.wait_until(lambda: len(sent) >= overdue, timeout=overdue / 25 + 120)
                await sender(app).settled()  # leave no send without its outcome recorded
            engine.dispose()
    too_many = sum(1 for c in sandbox.state.calls if c.status == 429)
    first, last = sent[0].sent_at - clock.origin, sent[overdue - 1].sent_at - clock.origin
    return RecoveryFigures(overdue, future, first, last, too_many)


async def measure(
    overdue: int = 1_000, future: int = 100_000, *, runs: int
) -> Paired[RecoveryFigures, RecoveryFigures]:
    """An empty start and a start with the backlog, in alternation, `runs` times."""
    with tempfile.TemporaryDirectory(prefix="followup-restart-") as workdir:
        empty_dir, full_dir = Path(workdir) / "empty", Path(workdir) / "full"
        empty_dir.mkdir()
        full_dir.mkdir()
        empty, settings = build(empty_dir, overdue=1, future=0)
        full, _ = build(full_dir, overdue=overdue, future=future)
        return await alternate(
            lambda: _start(empty, settings, overdue=1, future=0),
            lambda: _start(full, settings, overdue=overdue, future=future),
            runs,
        )


def summary(paired: Paired[RecoveryFigures, RecoveryFigures]) -> dict[str, float]:
    first = median(paired.subject, lambda f: f.first_seconds)
    base = median(paired.baseline, lambda f: f.first_seconds)
    return {
        "first": first, "empty_first": base, "delay": first - base,
        "all": median(paired.subject, lambda f: f.all_seconds),
        "too_many": max(f.too_many_requests for f in paired.subject),
    }  # fmt: skip
