"""What every handler needs, injected through a typed CallbackContext."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session
from telegram.ext import Application, CallbackContext, ExtBot

from followup.settings import Settings
from models.db import transaction
from scheduler.clock import Clock, system_clock

T = TypeVar("T")


@dataclass
class Deps:
    settings: Settings
    engine: Engine
    clock: Clock = field(default=system_clock)

    def now(self) -> dt.datetime:
        return self.clock()

    async def db(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction on a worker thread, off the event loop."""
        return await asyncio.to_thread(self._run, work)

    def _run(self, work: Callable[[Session], T]) -> T:
        with transaction(self.engine) as session:
            return work(session)


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The handlers' context, with the injected dependencies one attribute away."""

    @property
    def deps(self) -> Deps:
        deps = self.application.bot_data["deps"]
        assert isinstance(deps, Deps)
        return deps


BotApp = Application[ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], dict[Any, Any], Any]
