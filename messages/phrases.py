"""Word lists kept as data: the stop words and the emergency phrases."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

_HERE = Path(__file__).parent


def _load(name: str, key: str) -> tuple[str, ...]:
    data = yaml.safe_load((_HERE / name).read_text(encoding="utf-8"))
    return tuple(str(item) for item in data[key])


@cache
def stop_words() -> tuple[str, ...]:
    """Whole messages that show the withdrawal menu (messages/stop_words.yaml)."""
    return _load("stop_words.yaml", "stop_words")


@cache
def emergency_phrases() -> tuple[str, ...]:
    """Phrases that get the emergency text at once (messages/emergency_phrases.yaml)."""
    return _load("emergency_phrases.yaml", "phrases")
