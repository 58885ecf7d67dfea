"""Group commit: database writes that arrive while one is being committed go together next."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Write items in batches without waiting to collect them.

    The first caller writes its item at once; callers arriving while that transaction commits
    wait and go together in the next one. Nobody waits longer than one transaction for company,
    and under load one fsync serves many items. Each caller returns once its own item is
    committed, or raises what the write raised. (SQLAlchemy has no such thing; on SQLite, where
    every write transaction is its own fsync, it is the difference that matters.)
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[None]]) -> None:
        self._write = write
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._turn = asyncio.Lock()

    async def add(self, item: T) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        async with self._turn:
            batch, self._waiting = self._waiting, []
            if batch:  # else an earlier turn wrote this item
                try:
                    await self._write([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # every caller of the batch learns it failed
                    for _, future in batch:
                        future.set_exception(exc)
                else:
                    for _, future in batch:
                        future.set_result(None)
        await done
