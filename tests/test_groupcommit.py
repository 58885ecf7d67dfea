"""Group commit: items arriving during a write go together in the next one; failures reach all."""

from __future__ import annotations

import asyncio

import pytest

from bot.groupcommit import GroupCommit


async def test_items_arriving_during_a_write_share_the_next_one() -> None:
    batches: list[list[int]] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def write(items: list[int]) -> None:
        batches.append(items)
        if len(batches) == 1:
            started.set()
            await release.wait()  # the first write is slow: everyone else arrives meanwhile

    group = GroupCommit(write)
    first = asyncio.ensure_future(group.add(0))
    await started.wait()
    others = [asyncio.ensure_future(group.add(n)) for n in range(1, 10)]
    release.set()
    await asyncio.gather(first, *others)
    assert batches == [[0], list(range(1, 10))]


async def test_a_failed_write_fails_every_caller_in_its_batch() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    calls = 0

    async def write(items: list[int]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await release.wait()
            return
        raise RuntimeError("disk full")

    group = GroupCommit(write)
    first = asyncio.ensure_future(group.add(0))
    await started.wait()
    others = [asyncio.ensure_future(group.add(n)) for n in range(1, 4)]
    release.set()
    await first
    results = await asyncio.gather(*others, return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError] * 3
    with pytest.raises(RuntimeError):
        await group.add(4)
