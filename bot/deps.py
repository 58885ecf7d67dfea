"""What every handler needs, injected through a typed CallbackContext."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session
from telegram.ext import Application, CallbackContext, ExtBot

from followup.settings import Settings
from models.db import URGENT, read_transaction, transaction
from scheduler.clock import Clock, system_clock

T = TypeVar("T")


# Worker threads besides asyncio's default ones, one set per process: reads never queue behind
# writes waiting for their turn, and urgent writes never queue behind ordinary ones.
_READS = ThreadPoolExecutor(4, thread_name_prefix="followup-read")
_URGENT = ThreadPoolExecutor(2, thread_name_prefix="followup-urgent")


@contextmanager
def urgent() -> Iterator[None]:
    """Database work in this block is what a coordinator is waiting for (`Deps.db`)."""
    token = URGENT.set(True)
    try:
        yield
    finally:
        URGENT.reset(token)


@dataclass
class Deps:
    settings: Settings
    engine: Engine
    clock: Clock = field(default=system_clock)

    def now(self) -> dt.datetime:
        return self.clock()

    async def db(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction on a worker thread, off the event loop.

        Inside `urgent()` it runs on threads of its own and takes the next write turn, so an
        alert and its notice never queue behind a burst of other updates' bookkeeping.
        """
        if URGENT.get():
            return await self._on(_URGENT, self._run, work)
        return await asyncio.to_thread(self._run, work)

    def _run(self, work: Callable[[Session], T]) -> T:
        with transaction(self.engine) as session:
            return work(session)

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run `work`, which only reads, on threads of its own: it waits for no writer."""
        return await self._on(_READS, self._read, work)

    @staticmethod
    async def _on(pool: Executor, run: Callable[[Callable[[Session], T]], T],
                  work: Callable[[Session], T]) -> T:  # fmt: skip
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, context.run, run, work)

    def _read(self, work: Callable[[Session], T]) -> T:
        with read_transaction(self.engine) as session:
            return work(session)


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The handlers' context, with the injected dependencies one attribute away."""

    @property
    def deps(self) -> Deps:
        deps = self.application.bot_data["deps"]
        assert isinstance(deps, Deps)
        return deps


BotApp = Application[ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], dict[Any, Any], Any]
