"""A database created by the first revision, with data in it, upgrades to head with data kept."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine, text

from models import schema
from models.db import make_engine, transaction
from models.participants import participant_by_study_id

NOW = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)


def test_first_revision_with_data_upgrades_to_head(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:  # a fresh, empty database beside the test's migrated one
        name = "old_" + database_url.rsplit("/", 1)[1]
        admin = create_engine(database_url.rsplit("/", 1)[0] + "/postgres",
                              isolation_level="AUTOCOMMIT")  # fmt: skip
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        url = database_url.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    schema.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO participant (study_id, language, timezone, enrolled_on, biospecimen,"
                " status, telegram_user_id, telegram_chat_id, linked_at, created_at) VALUES"
                " ('OLD1', 'zh', 'Asia/Shanghai', '2025-10-01', true, 'active', 42, 42,"
                " :now, :now)"
            ),
            {"now": NOW.replace(tzinfo=None) if url.startswith("sqlite") else NOW},
        )
    schema.upgrade(engine)
    assert schema.current_revisions(engine) == schema.head_revisions(engine)
    with transaction(engine) as session:
        participant = participant_by_study_id(session, "OLD1")
        assert participant is not None
        assert (participant.telegram_chat_id, participant.biospecimen) == (42, True)
        assert participant.chat_contact is True and participant.unreachable is False
        assert participant.linked_at == NOW
    engine.dispose()
    if not url.startswith("sqlite"):
        admin = create_engine(database_url.rsplit("/", 1)[0] + "/postgres",
                              isolation_level="AUTOCOMMIT")  # fmt: skip
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {url.rsplit('/', 1)[1]} WITH (FORCE)"))
        admin.dispose()
