"""The benchmarks run at a tiny size (a benchmark, not a timed test: nothing asserts timings)."""

from __future__ import annotations

import datetime as dt

from bench import dispatch, fanout
from bench.report import dispatch_rows, fanout_rows, render


async def test_fanout_benchmark_delivers_every_prompt() -> None:
    figures = await fanout.measure(5)
    assert figures.delivered == 5
    assert len(fanout_rows(figures)) == 3


def test_dispatch_benchmark_measures_both_passes() -> None:
    figures = dispatch.measure(60)
    assert figures.visits > 60 and figures.busy_messages >= 0
    rows = dispatch_rows(figures, baseline=[])
    text = render(rows, machine="test", date=dt.datetime.now(dt.UTC), command="x")
    assert "idle pass, 60 participants" in text
