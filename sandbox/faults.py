"""Fault injection and Telegram's sending limits, as the sandbox enforces them."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["429", "403", "500", "502", "timeout", "delay"]
SEND_METHODS = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup"})


@dataclass
class Fault:
    """One injected failure rule.

    `times` bounds how often it fires (None: forever); `probability` draws from the sandbox's
    seeded random source; `method` and `chat_id` narrow which calls it hits. A "429" with
    `global_block=True` refuses every call until `retry_after` seconds have passed.
    A "timeout" drops the connection without an answer; with `deliver=True` the call still
    takes effect first, as when Telegram sent the message but the reply was lost.
    """

    kind: FaultKind
    method: str | None = None
    chat_id: int | None = None
    times: int | None = 1
    probability: float = 1.0
    retry_after: int = 1
    delay: float = 0.0
    global_block: bool = False
    deliver: bool = False
    fired: int = 0

    def matches(self, method: str, chat_id: int | None, rng: random.Random) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.chat_id is not None and self.chat_id != chat_id:
            return False
        return self.probability >= 1.0 or rng.random() < self.probability


@dataclass
class TokenBucket:
    """`capacity` calls at once, refilled at `rate` per second."""

    rate: float
    capacity: float
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float) -> float:
        """Take one token; return 0 when allowed, else the seconds until one is free."""
        if self.tokens < 0:
            self.tokens, self.stamp = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass
class Limits:
    """Telegram's sending limits: about 30 messages a second overall, 1 a second per chat."""

    enabled: bool = False
    global_rate: float = 30.0
    per_chat_rate: float = 1.0
    per_chat_burst: float = 3.0
    clock: Callable[[], float] = time.monotonic
    _global: TokenBucket | None = None
    _chats: dict[int, TokenBucket] = field(default_factory=dict)

    def check(self, method: str, chat_id: int | None) -> int:
        """0 when the call may go through, else the retry_after to answer with."""
        if not self.enabled or method not in SEND_METHODS:
            return 0
        now = self.clock()
        if self._global is None:
            self._global = TokenBucket(self.global_rate, self.global_rate)
        wait = self._global.take(now)
        if not wait and chat_id is not None:
            bucket = self._chats.setdefault(
                chat_id, TokenBucket(self.per_chat_rate, self.per_chat_burst)
            )
            wait = bucket.take(now)
            if wait:
                self._global.tokens = min(self._global.capacity, self._global.tokens + 1)
        return max(1, int(wait + 0.999)) if wait else 0


@dataclass
class Storm:
    """A seeded mix of failures over every Bot API call but getUpdates.

    Each call fails with probability `rate`, as one of: a 429 whose `retry_after` (1 to
    `max_retry_after` seconds) opens a window in which every call is refused, as Telegram's flood
    control does; a 500; a 502; or a timeout, which drops the connection either before the call
    takes effect or after (the message is delivered but the reply is lost: the one case where a
    correct bot repeats a message). The `global_at`-th call instead gets one `global_retry_after`
    429. `injected` counts what fired, by kind.
    """

    rate: float = 0.10
    max_retry_after: int = 5
    global_at: int | None = None
    global_retry_after: int = 30
    calls: int = 0
    injected: dict[str, int] = field(default_factory=dict)

    def draw(self, rng: random.Random) -> Fault | None:
        self.calls += 1
        if self.calls == self.global_at:
            return self._count("429 global", Fault("429", retry_after=self.global_retry_after,
                                                   global_block=True))  # fmt: skip
        if rng.random() >= self.rate:
            return None
        kind = rng.choice(("429", "500", "502", "timeout"))
        if kind == "429":
            retry_after = rng.randint(1, self.max_retry_after)
            return self._count("429", Fault("429", retry_after=retry_after, global_block=True))
        if kind == "timeout":
            deliver = rng.random() < 0.5
            name = "timeout after delivery" if deliver else "timeout before delivery"
            return self._count(name, Fault("timeout", deliver=deliver))
        return self._count(kind, Fault(kind))  # type: ignore[arg-type]

    def _count(self, name: str, fault: Fault) -> Fault:
        self.injected[name] = self.injected.get(name, 0) + 1
        fault.fired = 1
        return fault
