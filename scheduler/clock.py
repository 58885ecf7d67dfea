"""The clock is a parameter: production reads the system time, tests travel in time."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> dt.datetime: ...


def system_clock() -> dt.datetime:
    """Now, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware start")
        self.now = start.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self.now += delta
        return self.now

    def set(self, when: dt.datetime) -> dt.datetime:
        self.now = when.astimezone(dt.UTC)
        return self.now
