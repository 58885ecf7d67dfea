"""The benchmark table: goal, figure, baseline, ratio, for docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt

from bench.dispatch import PassFigures
from bench.fanout import FanoutFigures

HEADER = ["measure", "goal", "figure", "baseline", "ratio"]


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
    return [
        [f"idle pass, {n} participants ({f.visits:,} visit rows)", "< 100 ms",
         f"{idle_ms:.1f} ms, peak {f.idle_peak_mb:.2f} MiB",
         f"{base_ms:.1f} ms (smallest size)", f"{idle_ms / base_ms:.2f}×"],
        [f"send-hour pass, {n} participants", "< 100 ms at 100,000",
         f"{f.busy_seconds * 1000:.0f} ms for {f.busy_messages:,} messages, "
         f"peak {f.busy_peak_mb:.1f} MiB",
         "—", f"{f.busy_seconds * 1000 / max(1, f.busy_messages):.2f} ms/message"],
        [f"first plan, {n} participants", "—", f"{f.plan_seconds:.1f} s", "—", "—"],
    ]  # fmt: skip


def render(rows: list[list[str]], *, machine: str, date: dt.datetime, command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Figures from `bench/` (`make bench`). They are measurements, not tests: nothing asserts",
        "a timing. Each is reported against a baseline measured in the same run.",
        "",
        f"- machine: {machine}",
        f"- date: {date:%Y-%m-%d %H:%M} UTC",
        f"- command: `{command}`",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    return "\n".join(lines)
