"""The benchmark table: goal, figure, baseline, ratio, for docs/benchmarks.md."""

from __future__ import annotations

from bench.dispatch import PassFigures
from bench.fanout import FanoutFigures


def fanout_rows(f: FanoutFigures) -> list[list[str]]:
    return [
        [f"fan-out of {f.prompts:,} due prompts: delivery rate",
         "≥ 95% of the limit", f"{f.rate:.1f} msg/s ({f.delivered:,} in {f.seconds:.0f} s)",
         f"sandbox limit {f.limit_per_second:.0f} msg/s (sender {f.send_rate_setting:g}/s)",
         f"{f.ratio:.1%}"],
        [f"fan-out of {f.prompts:,}: 429 answers received", "0",
         str(f.too_many_requests), "0", "—"],
        [f"fan-out of {f.prompts:,}: the pass that queued them", "—",
         f"{f.dispatch_seconds * 1000:.0f} ms", "—", "—"],
    ]  # fmt: skip


def dispatch_rows(f: PassFigures, *, baseline: list[list[str]]) -> list[list[str]]:
    """Rows for one size; the idle pass is compared with the smallest size's idle pass."""
    first = next((r for r in baseline if r[0].startswith("idle pass")), None)
    base_ms = float(first[2].split()[0]) if first else f.idle_seconds * 1000
    idle_ms = f.idle_seconds * 1000
    n = f"{f.participants:,}"
    busy_p50, busy_max = f.p50_max_ms(f.answer_writes)
    ratios = [busy / floor for busy, floor in f.alternations]
    alternated = f" (median of {len(ratios)} alternations)" if len(ratios) > 1 else ""
    quiet_p50, quiet_max = f.p50_max_ms(f.quiet_writes)
    return [
        [f"idle pass, {n} participants ({f.visits:,} visit rows)", "< 100 ms",
         f"{idle_ms:.1f} ms, peak {f.idle_peak_mb:.2f} MiB",
         f"{base_ms:.1f} ms (smallest size)", f"{idle_ms / base_ms:.2f}×"],
        [f"send-hour pass, {n} participants{alternated}", "< 100 ms at 100,000",
         f"{f.busy_seconds * 1000:.0f} ms for {f.busy_messages:,} messages, "
         f"peak {f.busy_peak_mb:.1f} MiB",
         "—", f"{f.busy_seconds * 1000 / max(1, f.busy_messages):.2f} ms/message"],
    ] + ([
        [f"send-hour pass's floor, {n} participants{alternated}: the same rows written with "
         "nothing decided or read", "—",
         f"{f.floor_seconds * 1000:.1f} ms for {sum(f.floor_rows.values()):,} rows "
         f"({', '.join(f'{rows:,} {table}' for table, rows in f.floor_rows.items())}) in "
         f"{f.floor_transactions} transactions",
         f"{f.busy_seconds * 1000:.1f} ms (the pass)", f"{f.busy_seconds / f.floor_seconds:.2f}×"],
        [f"send-hour pass over its floor, {n} participants (the median of the "
         f"{len(ratios)} alternations' ratios)", "≤ 1.25× at 100,000",
         f"{f.floor_ratio:.2f}× (each: {', '.join(f'{r:.2f}' for r in ratios)})",
         "the floor", "—"],
    ] if f.floor_seconds is not None and f.floor_ratio is not None else []) + [
        [f"first plan, {n} participants", "—", f"{f.plan_seconds:.1f} s", "—", "—"],
        [f"an answer's write during the next send-hour pass, {n} participants",
         "—",
         f"p50 {busy_p50:.1f} ms, max {busy_max:.0f} ms ({len(f.answer_writes)} writes during "
         f"{f.next_seconds * 1000:.0f} ms for {f.next_messages:,} messages)",
         f"p50 {quiet_p50:.1f} ms, max {quiet_max:.0f} ms (no pass running)",
         f"max {busy_max - quiet_max:+.0f} ms"],
    ]  # fmt: skip


def conversation_rows(
    s: dict[str, float], *, participants: int, answers: int, limiter: str,
    goal: str = "≥ 0.8× echo",
) -> list[list[str]]:  # fmt: skip
    """Rows for figure 1 from conversation.summary, against the bare echo bot, and against the
    floor (the echo bot storing each press first) when it was taken."""
    what = f"conversation, {participants} participants × {answers} answers, limiter {limiter}"
    return [
        [f"{what}: throughput", goal, f"{s['rate']:.1f} answers/s",
         f"{s['echo_rate']:.1f} answers/s (bare echo bot)", f"{s['ratio']:.2f}×"],
        [f"{what}: p50 latency", "—", f"{s['p50']:.0f} ms", f"{s['echo_p50']:.0f} ms",
         f"{s['p50'] / s['echo_p50']:.2f}×"],
        [f"{what}: p99 latency", "—", f"{s['p99']:.0f} ms", f"{s['echo_p99']:.0f} ms",
         f"{s['p99'] / s['echo_p99']:.2f}×"],
    ] + ([
        [f"{what}: the participants' process on the CPU", "—", f"{s['server_busy']:.0%}",
         f"{s['echo_server_busy']:.0%}", "—"],
    ] if "server_busy" in s else []) + ([
        [f"{what}: the floor, the echo bot storing each press as one row first (commits "
         "shared): throughput",
         "—", f"{s['floor_rate']:.1f} answers/s (p50 {s['floor_p50']:.0f} ms, "
         f"p99 {s['floor_p99']:.0f} ms)", f"{s['echo_rate']:.1f} answers/s (bare echo bot)",
         f"{s['floor_ratio']:.2f}×"],
        [f"{what}: throughput against the floor", "—", f"{s['rate']:.1f} answers/s",
         f"{s['floor_rate']:.1f} answers/s (the floor)", f"{s['over_floor']:.2f}×"],
    ] if "floor_rate" in s else []) + ([
        [f"{what}: the design's floor, the echo bot keeping what DESIGN.md asks of every bot "
         "(inbox; answer, reply and handled mark in one transaction; sent mark): throughput",
         "—", f"{s['design_rate']:.1f} answers/s (p50 {s['design_p50']:.0f} ms, "
         f"p99 {s['design_p99']:.0f} ms)", f"{s['echo_rate']:.1f} answers/s (bare echo bot)",
         f"{s['design_ratio']:.2f}×"],
        [f"{what}: throughput against the design's floor", "≥ 0.8× the design's floor",
         f"{s['rate']:.1f} answers/s", f"{s['design_rate']:.1f} answers/s (the design's floor)",
         f"{s['over_design']:.2f}×"],
    ] if "design_rate" in s else [])  # fmt: skip


def unlimited_rows(s: dict[str, float], *, prompts: int) -> list[list[str]]:
    """Rows for figure 2 with the limits off, against a bare send_message loop; the goal is the
    first row, with the sandbox in a process of its own as Telegram's servers are."""
    rows = []
    for suffix, where, goal in (("", "sandbox in its own process", "≥ 0.8× bare loop"),
                                ("_together", "sandbox in the bot's process", "—")):  # fmt: skip
        rows.append([
            f"fan-out of {prompts:,} due prompts, limits off, {where}: dispatch rate", goal,
            f"{s['rate' + suffix]:.0f} msg/s (bot/sender.py)",
            f"{s['bare_rate' + suffix]:.0f} msg/s (bare `send_message` loop)",
            f"{s['ratio' + suffix]:.2f}×",
        ])  # fmt: skip
    return rows


def restart_rows(s: dict[str, float], *, overdue: int, future: int) -> list[list[str]]:
    """Rows for figure 4, against a start on an empty database."""
    limit = overdue / 30
    return [
        [f"restart with {future:,} future and {overdue:,} overdue prompts: "
         "start to the first overdue prompt sent", "within 5 s of the baseline",
         f"{s['first']:.2f} s", f"{s['empty_first']:.2f} s (empty database, one prompt due)",
         f"{s['delay']:+.2f} s"],
        [f"restart: start to all {overdue:,} overdue prompts sent",
         f"≤ {overdue:,}/30 s + 10 s = {limit + 10:.1f} s",
         f"{s['all']:.1f} s, {s['too_many']:.0f} 429s",
         f"{limit:.1f} s ({overdue:,} at Telegram's 30/s)", f"{s['all'] / limit:.2f}×"],
    ]  # fmt: skip
