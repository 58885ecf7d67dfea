"""`python -m bench [--only NAME] [--smoke] [--runs N] [--write]`: run the benchmarks.

Each figure is printed as a Markdown table; `--write` also puts it in its own section of
docs/benchmarks.md and leaves the other sections and the prose alone (bench/docs.py).
Benchmarks are not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import alert_latency, conversation, dispatch, docs, fanout, parity, restart, unlimited
from bench.backends import postgres, sqlite_url
from bench.report import (
    conversation_rows,
    dispatch_rows,
    fanout_rows,
    restart_rows,
    unlimited_rows,
)
from bench.runs import RUNS

NAMES = ["conversation", "fanout", "unlimited", "dispatch", "restart", "alerts", "parity"]
Rows = list[list[str]]


@dataclass(frozen=True)
class Sizes:
    fanout: int  # prompts, limits on
    dispatch: tuple[int, ...]  # participants
    conversation: tuple[int, int]  # participants, answers each
    unlimited: int  # prompts, limits off
    restart: tuple[int, int]  # overdue, future prompts
    parity_dispatch: tuple[int, ...]  # participants; 100,000 is left to `dispatch`
    alerts: tuple[int, int]  # participants answering at once, how many of them RED


FULL = Sizes(
    10_000, (1_000, 10_000, 100_000), (50, 6), 2_000, (1_000, 100_000), (1_000, 10_000), (50, 5)
)
SMOKE = Sizes(60, (100, 1_000), (3, 2), 10, (5, 200), (100,), (3, 1))


def machine() -> str:
    load = os.getloadavg()[0]
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs (shared; load "
            f"{load:.1f} at the end), Python {platform.python_version()}")  # fmt: skip


def run_conversation(size: Sizes, runs: int) -> tuple[Rows, int]:
    participants, answers = size.conversation
    rows: Rows = []
    with tempfile.TemporaryDirectory(prefix="followup-conversation-") as workdir:
        # The goal's rows: the limiter as shipped, and off with the participants and their
        # sandbox in a process of their own, as Telegram and their phones are (figure 2 alike).
        for rate, apart, label, goal in (
            (29.0, False, "as shipped (29/s)", "≥ 0.8× echo"),
            (unlimited.UNLIMITED, True, "off, participants in their own process", "≥ 0.8× echo"),
            (unlimited.UNLIMITED, False, "off, participants in the bot's process", "—"),
        ):
            # The goal's unlimited row also takes the floor: the echo bot storing each press.
            paired = asyncio.run(conversation.measure(
                participants, answers, lambda: sqlite_url(Path(workdir)), runs=runs,
                send_rate=rate, apart=apart, floor=apart,
            ))  # fmt: skip
            rows += conversation_rows(conversation.summary(paired), participants=participants,
                                      answers=answers, limiter=label, goal=goal)  # fmt: skip
    return rows, runs


def run_parity(size: Sizes, runs: int) -> tuple[Rows, int]:
    participants, answers = size.conversation
    with tempfile.TemporaryDirectory(prefix="followup-parity-") as workdir, postgres() as server:
        chat = asyncio.run(parity.measure_conversation(
            server, Path(workdir), participants, answers, runs=runs,
            send_rate=unlimited.UNLIMITED,
        ))  # fmt: skip
        rows = parity.conversation_rows(chat, participants=participants, answers=answers)
        for n in size.parity_dispatch:
            rows += parity.dispatch_rows(parity.measure_dispatch(server, n, runs=runs))
    return rows, runs


def run_one(name: str, size: Sizes, runs: int, send_rate: float) -> tuple[Rows, int]:
    """The rows of one section and how many alternating runs each figure is the median of."""
    if name == "conversation":
        return run_conversation(size, runs)
    if name == "parity":
        return run_parity(size, runs)
    if name == "unlimited":
        s = unlimited.summary(asyncio.run(unlimited.measure(size.unlimited, runs=runs)))
        return unlimited_rows(s, prompts=size.unlimited), runs
    if name == "restart":
        overdue, future = size.restart
        s = restart.summary(asyncio.run(restart.measure(overdue, future, runs=runs)))
        return restart_rows(s, overdue=overdue, future=future), runs
    if name == "fanout":  # one run: 10,000 prompts at 30/s take six minutes
        return fanout_rows(asyncio.run(fanout.measure(size.fanout, send_rate=send_rate))), 1
    if name == "dispatch":
        rows: Rows = []
        for n in size.dispatch:
            # The send-hour pass and its floor alternate `runs` times (their rows say so); the
            # other passes of a size are one run each.
            rows += dispatch_rows(dispatch.measure(n, repeats=runs), baseline=rows)
        return rows, 1
    participants, red = size.alerts
    figures = asyncio.run(alert_latency.measure_all(participants, red=red, runs=runs))
    return alert_latency.latency_rows(figures), runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and one run, for CI")
    parser.add_argument("--only", choices=NAMES, action="append", help="repeatable")
    parser.add_argument("--runs", type=int, help=f"alternating runs per figure (default {RUNS})")
    parser.add_argument("--send-rate", type=float, default=29.0, help="fanout: FOLLOWUP_SEND_RATE")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.write and args.smoke:
        parser.error("--write records full-size figures; drop --smoke")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: already running"
    size, runs = (SMOKE, args.runs or 1) if args.smoke else (FULL, args.runs or RUNS)
    sections: dict[str, str] = {}
    for name in args.only or NAMES:
        rows, taken = run_one(name, size, runs, args.send_rate)
        flags = " --smoke" if args.smoke else ""
        flags += f" --runs {args.runs}" if args.runs else ""
        command = f"python -m bench --only {name}{flags}"
        sections[name] = docs.table(rows, machine=machine(), date=dt.datetime.now(dt.UTC),
                                    command=command, runs=taken,
                                    pooled=name == "alerts")  # fmt: skip
        sys.stdout.write(f"\n## {docs.TITLES[name]}\n\n{sections[name]}\n")
        sys.stdout.flush()
    if args.write:
        docs.write(sections)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
