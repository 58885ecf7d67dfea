"""The hash-chained audit log: `followup audit verify` finds edited, deleted and moved rows."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from followup.cli import app
from models import audit
from models.db import transaction
from models.tables import AuditEvent
from scheduler.clock import FrozenClock

runner = CliRunner()
START = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FOLLOWUP_DATABASE_URL", database_url)
    return database_url


def _chain(n: int) -> list[AuditEvent]:
    """n rows chained in memory, ids 1..n, as `audit.record` would write them."""
    rows, prev = [], audit.GENESIS
    for i in range(1, n + 1):
        row = AuditEvent(id=i, at=START + dt.timedelta(minutes=i), actor="coordinator:test",
                         action="visit.completed", entity="participant", entity_id=f"P{i:03}",
                         after=f'{{"visit": {i}}}', prev_hash=prev, hash="")  # fmt: skip
        row.hash = prev = audit.chain_hash(prev, row)
        rows.append(row)
    return rows


def test_an_intact_chain_verifies() -> None:
    assert audit.verify_chain(_chain(6)) is None
    assert audit.verify_chain([]) is None


def test_verify_names_the_first_broken_row_and_what_happened() -> None:
    edited = _chain(6)
    edited[2].after = '{"visit": 99}'
    assert audit.verify_chain(edited) == audit.ChainBreak(3, 2, "altered")
    deleted = _chain(6)
    del deleted[2]
    assert audit.verify_chain(deleted) == audit.ChainBreak(4, 2, "deleted")
    first_gone = _chain(3)[1:]
    assert audit.verify_chain(first_gone) == audit.ChainBreak(2, 0, "deleted")
    swapped = _chain(6)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    assert audit.verify_chain(swapped) == audit.ChainBreak(4, 2, "out_of_order")
    forged = _chain(6)
    extra = AuditEvent(id=99, at=START, actor="x", action="y", entity="participant",
                       entity_id="P999", prev_hash=forged[2].hash, hash="")  # fmt: skip
    extra.hash = audit.chain_hash(extra.prev_hash, extra)
    forged.insert(3, extra)
    assert audit.verify_chain(forged) == audit.ChainBreak(99, 3, "inserted")


def _write_rows(engine: Engine, n: int) -> None:
    with transaction(engine) as session:
        for i in range(n):
            audit.record(session, at=START + dt.timedelta(minutes=i), actor="coordinator:test",
                         action="visit.completed", entity="participant", entity_id=f"P{i:03}",
                         after={"visit": i})  # fmt: skip


def _tamper(engine: Engine, *statements: str) -> None:
    with transaction(engine) as session:
        for statement in statements:
            session.execute(text(statement))


def _verify() -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify"])
    return result.exit_code, result.output


def test_audit_verify_passes_then_catches_an_edited_row(env: str, engine: Engine) -> None:
    _write_rows(engine, 5)
    assert _verify()[0] == 0
    _tamper(engine, "UPDATE auditevent SET after = '{\"visit\": 7}' WHERE id = 3")
    code, output = _verify()
    assert code == 1 and "audit row 3" in output and "altered" in output


def test_audit_verify_catches_a_deleted_row(env: str, engine: Engine) -> None:
    _write_rows(engine, 5)
    _tamper(engine, "DELETE FROM auditevent WHERE id = 3")
    code, output = _verify()
    assert code == 1 and "audit row 4" in output and "deleted" in output


def test_audit_verify_catches_reordered_rows(env: str, engine: Engine) -> None:
    _write_rows(engine, 5)
    # Swap rows 3 and 4 by their ids: the content and hashes are untouched.
    _tamper(
        engine,
        "UPDATE auditevent SET id = 1000 WHERE id = 3",
        "UPDATE auditevent SET id = 3 WHERE id = 4",
        "UPDATE auditevent SET id = 4 WHERE id = 1000",
    )
    code, output = _verify()
    assert code == 1 and "audit row 3" in output and "out of order" in output


def test_withdrawal_rows_join_the_chain(env: str, engine: Engine, clock: FrozenClock) -> None:
    from tests.factories import enroll_participant

    enroll_participant(engine, clock)
    result = runner.invoke(app, ["withdraw", "P001", "--scope", "study"])
    assert result.exit_code == 0, result.output
    with transaction(engine) as session:
        rows = audit.all_events(session)
    assert "consent.withdrawn" in [r.action for r in rows]
    assert audit.verify_chain(rows) is None
