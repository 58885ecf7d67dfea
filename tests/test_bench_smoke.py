"""Every benchmark runs at a tiny size (a benchmark, not a timed test: nothing asserts timings).

PostgreSQL parity (bench/parity.py) is left to `python -m bench --smoke --only parity`: the
PostgreSQL suite already runs every database test on a throwaway cluster.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from pathlib import Path

import pytest
from sqlalchemy import select

from bench import alert_latency, conversation, dispatch, docs, fanout, restart, unlimited
from bench.backends import sqlite_url
from bench.echo import PRESSES, echo_bot, wire_settings
from bench.floor import ANSWERS, OUTBOX
from bench.report import (
    conversation_rows,
    dispatch_rows,
    fanout_rows,
    restart_rows,
    unlimited_rows,
)
from bench.runs import alternate
from bench.setup import settings_for
from bot.app import build_application
from bot.deps import Deps
from bot.durable import DurableBot
from models.db import make_engine
from models.inbox import InboxUpdate


def section(rows: list[list[str]]) -> str:
    return docs.table(rows, machine="test", date=dt.datetime.now(dt.UTC), command="x", runs=1)


async def test_fanout_benchmark_delivers_every_prompt() -> None:
    figures = await fanout.measure(5)
    assert figures.delivered == 5
    assert len(fanout_rows(figures)) == 3


def test_dispatch_benchmark_measures_both_passes() -> None:
    figures = dispatch.measure(60)
    assert figures.visits > 60 and figures.busy_messages >= 0
    assert len(figures.answer_writes) >= 1 and len(figures.quiet_writes) == dispatch.QUIET_WRITES
    table = section(dispatch_rows(figures, baseline=[]))
    assert "idle pass, 60 participants" in table
    assert "an answer's write during the next send-hour pass, 60 participants" in table


def test_dispatch_benchmark_measures_the_send_hour_pass_floor() -> None:
    """The floor writes the very rows the send-hour pass wrote (measure raises FloorMismatch
    unless its copy then equals the pass's database, every table and column), as many as the
    pass's report says: a stage change per visit acted on, an outbox row per prompt or reminder,
    an alert and its notice per missed visit, and the day's digest in a transaction of its own.
    """
    figures = dispatch.measure(60, repeats=2)
    assert figures.busy_messages > 0 and figures.busy_missed > 0
    # Two alternations of the pass and its floor, each pass on a fresh copy: the same report.
    assert len(figures.alternations) == 2 and all(b > 0 and f > 0 for b, f in figures.alternations)
    assert figures.busy_seconds == statistics.median(b for b, _ in figures.alternations)
    assert figures.floor_ratio == statistics.median(b / f for b, f in figures.alternations)
    assert figures.floor_rows == {
        "visit": figures.busy_messages + figures.busy_missed,
        "outboxmessage": figures.busy_messages + figures.busy_missed + 1,
        "alert": figures.busy_missed,
    }
    assert figures.floor_transactions == 2  # one batch of visits, then the digest
    assert figures.floor_seconds is not None and figures.floor_seconds > 0
    table = section(dispatch_rows(figures, baseline=[]))
    assert "send-hour pass's floor, 60 participants (median of 2 alternations)" in table
    assert "send-hour pass over its floor, 60 participants" in table
    without = section(dispatch_rows(
        dataclasses.replace(figures, floor_seconds=None, alternations=[]), baseline=[]
    ))  # fmt: skip
    assert "floor" not in without  # PostgreSQL parity runs take no floor


@pytest.mark.parametrize("apart", [False, True], ids=["participants-here", "participants-apart"])
async def test_conversation_benchmark_gets_a_reply_to_every_answer(
    tmp_path: Path, apart: bool
) -> None:
    """Both ways: the participants and their sandbox in this process, or in a child of their own
    (bench/participants.py), which sends back each conversation's figures. Apart, as in the
    goal's row, the floor (the echo bot storing each press) is taken too."""
    paired = await conversation.measure(
        3, 2, lambda: sqlite_url(tmp_path), runs=1, apart=apart, floor=apart
    )
    every = paired.baseline + paired.floor + paired.design_floor + paired.subject
    assert [f.answers for f in every] == ([6, 6, 6, 6] if apart else [6, 6])
    assert all(len(f.latencies_ms) == 6 for f in every)
    assert all((f.server_busy is not None) == apart for f in every)
    rows = conversation_rows(conversation.summary(paired), participants=3, answers=2,
                             limiter="test")  # fmt: skip
    assert len(rows) == (8 if apart else 3) and "throughput" in section(rows)
    assert ("throughput against the floor" in section(rows)) == apart
    assert ("throughput against the design's floor" in section(rows)) == apart


async def test_the_floor_keeps_one_row_a_press(tmp_path: Path) -> None:
    """The floor's echo bot stores every press, through the bot's own unit of work."""
    url = sqlite_url(tmp_path)
    figures = await conversation.measure_floor(3, 2, url, apart=False)
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(select(PRESSES.c.chat_id, PRESSES.c.data)).all()
    engine.dispose()
    assert figures.answers == 6 and len(stored) == 6
    assert sorted(data.split(":")[1] for _, data in stored) == ["0", "0", "0", "1", "1", "1"]


async def test_the_design_floor_keeps_every_answer_reply_and_update(tmp_path: Path) -> None:
    """The design's floor keeps what DESIGN.md asks of every bot: each update in the inbox and
    marked handled, each answer with its reply queued, and each reply marked sent."""
    url = sqlite_url(tmp_path)
    figures = await conversation.measure_design_floor(3, 2, url, apart=False)
    engine = make_engine(url)
    with engine.connect() as conn:
        answers = conn.execute(select(ANSWERS.c.data)).scalars().all()
        replies = conn.execute(select(OUTBOX.c.status, OUTBOX.c.telegram_message_id)).all()
        updates = conn.execute(select(InboxUpdate.done_at)).scalars().all()  # type: ignore[call-overload]
    engine.dispose()
    assert figures.answers == 6 and len(answers) == 6
    assert sorted(data.split(":")[1] for data in answers) == ["0", "0", "0", "1", "1", "1"]
    assert len(replies) == 6 and all(status == "sent" and m for status, m in replies)
    assert len(updates) == 6 and all(at is not None for at in updates)


def test_echo_bot_is_configured_like_the_real_bot(tmp_path: Path) -> None:
    settings = settings_for(
        f"sqlite:///{tmp_path}/x.db", telegram_api_url="http://127.0.0.1:1/bot"
    )
    deps = Deps(settings=settings, engine=make_engine(settings.database_url))
    real = DurableBot(deps, "1:token")
    assert wire_settings(echo_bot(settings, "1:token")) == wire_settings(real)
    processor = build_application(deps, token="1:token").update_processor
    assert processor.max_concurrent_updates == conversation.CONCURRENCY
    deps.engine.dispose()


async def test_fanout_with_limits_off_delivers_every_prompt_on_both_sides() -> None:
    measured = await unlimited.measure(10, runs=1)
    for paired in (measured.own_process, measured.bot_process):
        assert [f.messages for f in paired.baseline + paired.subject] == [10, 10]
    rows = unlimited_rows(unlimited.summary(measured), prompts=10)
    assert ["own process" in rows[0][0], "bot's process" in rows[1][0]] == [True, True]


async def test_restart_benchmark_sends_every_overdue_prompt() -> None:
    paired = await restart.measure(5, 200, runs=1)
    (empty,), (full,) = paired.baseline, paired.subject
    assert empty.overdue == 1 and full.overdue == 5 and full.too_many_requests == 0
    assert 0 < full.first_seconds <= full.all_seconds
    assert len(restart_rows(restart.summary(paired), overdue=5, future=200)) == 2


async def test_alert_benchmark_notifies_the_coordinator_of_every_red_answer() -> None:
    figures = await alert_latency.measure_all(3, red=1, runs=2)
    assert (figures.mixed.participants, figures.mixed.red, figures.mixed.samples) == (3, 1, 2)
    assert (figures.burst.samples, figures.single.samples) == (3, 1)
    rows = alert_latency.latency_rows(figures)
    assert len(rows) == 4 and "(2 alerts over 2 runs)" in rows[0][0]
    stamp = docs.table(rows, machine="test", date=dt.datetime.now(dt.UTC), command="x", runs=2,
                       pooled=True)  # fmt: skip
    assert "samples of 2 runs pooled" in stamp


async def test_alternate_takes_baseline_and_subject_in_turn() -> None:
    order: list[str] = []

    async def take(name: str) -> str:
        order.append(name)
        return name

    paired = await alternate(lambda: take("b"), lambda: take("s"), runs=3)
    assert order == ["b", "s"] * 3 and paired.runs == 3


def test_writing_a_section_keeps_the_prose_and_the_other_sections() -> None:
    text = (
        "# Benchmarks\n\nWhy.\n\n<!-- bench:restart -->\nold\n<!-- /bench:restart -->\n\nMore.\n"
    )
    updated = docs.update(text, {"restart": "new", "unlimited": "added"})
    assert "Why." in updated and "More." in updated and "old" not in updated
    assert "<!-- bench:restart -->\nnew\n<!-- /bench:restart -->" in updated
    assert updated.rstrip().endswith("<!-- bench:unlimited -->\nadded\n<!-- /bench:unlimited -->")
