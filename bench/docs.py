"""docs/benchmarks.md: one marked table per figure; a run rewrites only the sections it measured.

A section sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; the prose around the
markers explains the figures and is never touched. A section the file lacks is appended.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

HEADER = ["measure", "goal", "figure", "baseline", "ratio"]
TITLES = {
    "conversation": "Conversation throughput (figure 1)",
    "fanout": "Fan-out with Telegram's limits (figure 2)",
    "unlimited": "Fan-out with the limits off (figure 2)",
    "dispatch": "One dispatch pass (figure 3)",
    "restart": "Restart recovery (figure 4)",
    "alerts": "Alert latency (figure 5)",
    "parity": "Backend parity (figure 6)",
}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def table(
    rows: Sequence[Sequence[str]], *, machine: str, date: dt.datetime, command: str, runs: int,
    pooled: bool = False,
) -> str:  # fmt: skip
    """The body of one section: the table, then where, when and how it was measured.
    `pooled`: the figures are percentiles over the samples of all runs, not medians of runs."""
    median = f"median of {runs} alternating runs" if runs > 1 else "one run"
    if pooled and runs > 1:
        median = f"samples of {runs} runs pooled"
    return "\n".join([
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        f"Machine: {machine}. Date: {date:%Y-%m-%d %H:%M} UTC, {median}. "
        f"Command: `{command}`.",
    ])  # fmt: skip


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def update(text: str, sections: Mapping[str, str]) -> str:
    """`text` with each named section's body replaced (or the section appended)."""
    for name, body in sections.items():
        start, end = _markers(name)
        block = f"{start}\n{body}\n{end}"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
        found = pattern.search(text)
        if found:
            text = text[: found.start()] + block + text[found.end() :]
        else:
            text = text.rstrip("\n") + f"\n\n## {TITLES.get(name, name)}\n\n{block}\n"
    return text


def write(sections: Mapping[str, str], path: Path = DOCS) -> None:
    path.write_text(update(path.read_text(encoding="utf-8"), sections), encoding="utf-8")
