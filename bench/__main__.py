"""`python -m bench [--smoke] [--only fanout|dispatch|alerts] [--write]`: run the benchmarks.

Figures are printed as a Markdown table; `--write` also puts them in docs/benchmarks.md.
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
from pathlib import Path

from bench import alert_latency, dispatch, fanout
from bench.report import dispatch_rows, fanout_rows, render

FULL = (10_000, (1_000, 10_000, 100_000))  # fan-out prompts; dispatch-pass participants
SMOKE = (60, (100, 1_000))
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs (shared), "
            f"Python {platform.python_version()}, SQLite file database")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--only", choices=["fanout", "dispatch", "alerts"])
    parser.add_argument("--send-rate", type=float, default=29.0, help="FOLLOWUP_SEND_RATE")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("telegram").setLevel(logging.WARNING)
    prompts, participants = SMOKE if args.smoke else FULL
    rows: list[list[str]] = []
    if args.only in (None, "fanout"):
        figures = asyncio.run(fanout.measure(prompts, send_rate=args.send_rate))
        rows += fanout_rows(figures)
    if args.only in (None, "dispatch"):
        for size in participants:
            rows += dispatch_rows(dispatch.measure(size), baseline=rows)
    if args.only in (None, "alerts"):
        rows += alert_latency.latency_rows(*asyncio.run(alert_latency.measure_both(50)))
    command = "python -m bench" + " ".join(["", *(argv if argv is not None else sys.argv[1:])])
    text = render(rows, machine=machine(), date=dt.datetime.now(dt.UTC), command=command.strip())
    sys.stdout.write(text)
    if args.write:
        DOCS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
