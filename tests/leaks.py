"""Search logs, databases and files for things that must never appear in them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import MetaData, String, Text, select
from sqlalchemy.engine import Engine

from sandbox import Sandbox

MIN_TEXT = 12  # shorter texts ("1", "yes", "start") occur in log lines by coincidence


def secrets_of(sandbox: Sandbox) -> dict[str, str]:
    """What the bot must keep out of logs: the token, names, and what participants wrote."""
    found = {"bot token": sandbox.token, "token secret": sandbox.token.split(":", 1)[1]}
    for user in sandbox.state.users.values():
        for field in ("first_name", "last_name", "username"):
            value = getattr(user, field)
            if value and len(value) >= 5:
                found[f"{field} of {user.id}"] = value
    for text in sandbox.user_texts:
        if len(text) >= MIN_TEXT and not text.startswith("/"):
            found[f"message text {text[:20]!r}"] = text
    return found


def leaks(haystack: str, secrets: dict[str, str]) -> list[str]:
    return sorted(name for name, value in secrets.items() if value in haystack)


def database_text(engine: Engine) -> str:
    """Every string stored in every table, as one text to search."""
    metadata = MetaData()
    metadata.reflect(engine)
    chunks: list[str] = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            if not columns:
                continue
            for row in connection.execute(select(*columns)):
                chunks.extend(str(v) for v in row if v is not None)
    return "\n".join(chunks)


def scan(lines: Iterable[str], secrets: dict[str, str]) -> list[str]:
    return leaks("\n".join(lines), secrets)
