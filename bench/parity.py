"""Backend parity: the conversation (figure 1) and the dispatch pass (figure 3) on PostgreSQL
next to SQLite, in the same run, on a throwaway cluster (bench/backends.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import conversation, dispatch
from bench.backends import Postgres, sqlite_url
from bench.conversation import ConversationFigures
from bench.dispatch import PassFigures
from bench.runs import median, rotate, rotate_sync


@dataclass
class ConversationParity:
    echo: list[ConversationFigures]
    sqlite: list[ConversationFigures]
    postgres: list[ConversationFigures]


@dataclass
class DispatchParity:
    participants: int
    sqlite: list[PassFigures]
    postgres: list[PassFigures]


async def measure_conversation(
    server: Postgres, workdir: Path, participants: int, answers: int, *, runs: int,
    send_rate: float = 29.0,
) -> ConversationParity:  # fmt: skip
    """Echo bot, real bot on SQLite, real bot on PostgreSQL, in turn, `runs` times; the
    participants in a process of their own, as in figure 1's goal row."""
    echo, sqlite, postgres = await rotate([
        lambda: conversation.measure_echo(participants, answers, send_rate=send_rate,
                                          apart=True),
        lambda: conversation.measure_bot(participants, answers, sqlite_url(workdir),
                                         send_rate=send_rate, apart=True),
        lambda: conversation.measure_bot(participants, answers, server.fresh_url(),
                                         send_rate=send_rate, apart=True),
    ], runs)  # fmt: skip
    return ConversationParity(echo, sqlite, postgres)


def measure_dispatch(server: Postgres, participants: int, *, runs: int) -> DispatchParity:
    """The dispatch-pass benchmark on SQLite and on PostgreSQL, in turn, `runs` times."""
    sqlite, postgres = rotate_sync([
        lambda: dispatch.measure(participants),
        lambda: dispatch.measure(participants, database_url=server.fresh_url()),
    ], runs)  # fmt: skip
    return DispatchParity(participants, sqlite, postgres)


def conversation_rows(
    p: ConversationParity, *, participants: int, answers: int
) -> list[list[str]]:
    echo = median(p.echo, lambda f: f.rate)
    rows = []
    for name, runs in (("SQLite", p.sqlite), ("PostgreSQL", p.postgres)):
        rate = median(runs, lambda f: f.rate)
        rows.append([
            f"conversation, {participants} × {answers} answers, participants in their own "
            f"process, {name}", "≥ 0.8× echo",
            f"{rate:.1f} answers/s, p50 {median(runs, lambda f: f.p50_ms):.0f} ms, "
            f"p99 {median(runs, lambda f: f.p99_ms):.0f} ms",
            f"echo {echo:.1f} answers/s, p50 {median(p.echo, lambda f: f.p50_ms):.0f} ms, "
            f"p99 {median(p.echo, lambda f: f.p99_ms):.0f} ms", f"{rate / echo:.2f}×",
        ])  # fmt: skip
    pg, lite = (median(r, lambda f: f.rate) for r in (p.postgres, p.sqlite))
    rows.append(["conversation throughput, PostgreSQL against SQLite", "—",
                 f"{pg:.1f} answers/s", f"{lite:.1f} answers/s (SQLite)",
                 f"{pg / lite:.2f}×"])  # fmt: skip
    return rows


def dispatch_rows(p: DispatchParity) -> list[list[str]]:
    n = f"{p.participants:,}"
    rows = []
    for label, figure in (("idle pass", lambda f: f.idle_seconds * 1000),
                          ("send-hour pass", lambda f: f.busy_seconds * 1000)):  # fmt: skip
        pg, lite = median(p.postgres, figure), median(p.sqlite, figure)
        rows.append([f"{label}, {n} participants, PostgreSQL", "< 100 ms at 100,000",
                     f"{pg:.1f} ms", f"{lite:.1f} ms (SQLite)", f"{pg / lite:.2f}×"])  # fmt: skip
    return rows
