"""The schema: Alembic creates and upgrades it, idempotently, matching the models."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select

from models import audit, schema
from models.db import make_engine, transaction
from models.metadata import target_metadata
from models.tables import AuditEvent
from scheduler.clock import FrozenClock


def test_upgrade_is_idempotent_and_reaches_every_head(engine: Engine) -> None:
    schema.upgrade(engine)
    schema.upgrade(engine)
    assert schema.current_revisions(engine) == schema.head_revisions(engine)


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, target_metadata)
    assert differences == []


def test_sqlite_file_is_owner_only_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    engine = make_engine(f"sqlite:///{path}")
    schema.upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600


def test_audit_rows_chain_by_hash(engine: Engine, clock: FrozenClock) -> None:
    with transaction(engine) as session:
        for n in range(3):
            audit.record(session, at=clock(), actor="system", action="test.event",
                         entity="participant", entity_id=f"P{n}", after={"n": n})  # fmt: skip
    with transaction(engine) as session:
        rows = session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    assert rows[0].prev_hash == audit.GENESIS
    for previous, row in itertools.pairwise(rows):
        assert row.prev_hash == previous.hash
        assert row.hash == audit.chain_hash(previous.hash, row)
