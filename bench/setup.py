"""Test-free data builders for the benchmarks: a scratch database and many participants."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import Engine

from followup.settings import Settings, load_settings
from models import schema
from models.db import make_engine, transaction
from models.tables import Participant

CHUNK = 5000


def scratch(workdir: Path, **overrides: object) -> tuple[Engine, Settings]:
    """A fresh, migrated SQLite database in `workdir` and settings pointing at it."""
    path = workdir / "bench.db"
    path.unlink(missing_ok=True)
    settings = load_settings(database_url=f"sqlite:///{path}", _env_file=None, **overrides)
    engine = make_engine(settings.database_url)
    schema.upgrade(engine)
    return engine, settings


def add_participants(
    engine: Engine, enrolled_on: Sequence[dt.date], *, chat_ids: Sequence[int] | None = None,
    now: dt.datetime,
) -> None:  # fmt: skip
    """Insert linked participants in bulk (the ORM would dominate the setup time)."""
    rows = [
        {"study_id": f"B{n:06d}", "language": "zh" if n % 3 else "en",
         "timezone": "Asia/Shanghai", "enrolled_on": day, "biospecimen": False,
         "status": "active", "chat_contact": True, "unreachable": False,
         "telegram_user_id": chat_ids[n] if chat_ids else 10_000_000 + n,
         "telegram_chat_id": chat_ids[n] if chat_ids else 10_000_000 + n, "created_at": now}
        for n, day in enumerate(enrolled_on)
    ]  # fmt: skip
    for start in range(0, len(rows), CHUNK):
        with transaction(engine) as session:
            session.execute(Participant.__table__.insert(), rows[start : start + CHUNK])  # type: ignore[attr-defined]
