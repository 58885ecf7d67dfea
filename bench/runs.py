"""Alternating runs: baseline, subject, baseline, subject … and the median of each figure.

A shared machine drifts within a run (other processes, thermal limits, the page cache); taking
the two sides in turn and reporting medians keeps that drift out of the ratio.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

B = TypeVar("B")
S = TypeVar("S")
T = TypeVar("T")
RUNS = 5  # at least five pairs for a reported figure; smoke runs may use one


@dataclass
class Paired(Generic[B, S]):
    """Every run of a baseline and of its subject, in the order they were taken."""

    baseline: list[B]
    subject: list[S]

    @property
    def runs(self) -> int:
        return len(self.subject)


def median(items: Sequence[T], figure: Callable[[T], float]) -> float:
    """The median of one figure over runs."""
    return statistics.median(figure(item) for item in items)


async def alternate(
    baseline: Callable[[], Awaitable[B]], subject: Callable[[], Awaitable[S]], runs: int = RUNS
) -> Paired[B, S]:
    """Measure `baseline` then `subject`, `runs` times over."""
    paired: Paired[B, S] = Paired([], [])
    for _ in range(runs):
        paired.baseline.append(await baseline())
        paired.subject.append(await subject())
    return paired


async def rotate(sides: Sequence[Callable[[], Awaitable[T]]], runs: int = RUNS) -> list[list[T]]:
    """Measure each side in turn, `runs` times over: one list of runs per side."""
    taken: list[list[T]] = [[] for _ in sides]
    for _ in range(runs):
        for side, measure in zip(taken, sides, strict=True):
            side.append(await measure())
    return taken


def rotate_sync(sides: Sequence[Callable[[], T]], runs: int = RUNS) -> list[list[T]]:
    """`rotate` for measurements that are not coroutines (a dispatch pass)."""
    taken: list[list[T]] = [[] for _ in sides]
    for _ in range(runs):
        for side, measure in zip(taken, sides, strict=True):
            side.append(measure())
    return taken


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (inclusive method); a single value is its own percentile."""
    return statistics.quantiles(list(values) * 2, n=100, method="inclusive")[q - 1]
