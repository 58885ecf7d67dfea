"""The alert rules versions, read from messages/alert_rules/rules-v<N>.yaml."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from study.alert_rules import Rules, parse_rules

RULES = Path(__file__).parent / "alert_rules"
_NAME = re.compile(r"^rules-v(?P<version>[0-9]+)\.yaml$")


def versions() -> list[int]:
    """Every rules version on disk, oldest first (read once per folder: a new version ships
    with a release and a restart)."""
    return list(_versions_in(RULES))


@cache
def _versions_in(folder: Path) -> tuple[int, ...]:
    # Cached: every button press asks for the current rules, on the event loop, and listing
    # the folder each time was file-system work there (docs/benchmarks.md).
    found = [_NAME.match(p.name) for p in folder.glob("rules-v*.yaml")]
    return tuple(sorted(int(m["version"]) for m in found if m))


@cache
def rules(version: int) -> Rules:
    data = yaml.safe_load((RULES / f"rules-v{version}.yaml").read_text(encoding="utf-8"))
    parsed = parse_rules(data)
    if parsed.version != version:
        raise ValueError(f"rules-v{version}.yaml declares version {parsed.version}")
    return parsed


def current() -> Rules:
    """The version new alerts are raised under."""
    return rules(versions()[-1])
