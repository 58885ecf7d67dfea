"""The send-hour pass's floor: the very rows that pass wrote, written again with nothing decided.

`copy_before` keeps the database as it stood just before the pass (SQLite's backup API). After
the pass, `measure_floor` finds every row the pass inserted or changed, by comparing the two
files, and writes exactly those rows into the copy with statements built once (one executemany
per table per transaction), in as many transactions as the pass wrote in (its batches of
visits, then the digest's; the steps that found nothing to write commit nothing to disk), through
`models.db.transaction`: the same pragmas, BEGIN IMMEDIATE and synchronous=FULL. Nothing is read
and nothing decided, so the pass's time over the floor's is what its reads and decisions add.
Then the copy must equal the pass's database, table by table, or `FloorMismatch` is raised.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import math
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, MetaData, Table, bindparam, create_engine, func, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.expression import Executable

from models.db import make_engine, transaction
from models.metadata import target_metadata
from scheduler.dispatch import BATCH
from scheduler.escalation import digest_purpose

COPY = "floor_copy"  # the schema the copy is attached under, next to the pass's database
DRIVER = "visit"  # the table whose rows the pass takes BATCH at a time, one transaction each
# The pass's digest step queues the day's digest in a transaction of its own, after the batches.
DIGEST = digest_purpose(dt.date.min).partition(":")[0] + ":"
Step = tuple[Executable, list[dict[str, Any]]]


class FloorMismatch(Exception):
    """The floor did not write what the pass wrote (or the pass did what the floor cannot)."""


@dataclass(frozen=True)
class Floor:
    """The floor's time, the rows it wrote per table, and its transactions."""

    seconds: float
    rows: dict[str, int]
    transactions: int


@dataclass
class _Written:
    """What the pass wrote to one table: rows inserted, and rows changed with their columns."""

    table: Table
    inserted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)  # new values; old ones in "_old"
    columns: list[str] = field(default_factory=list)  # those that changed in any updated row


def copy_before(database: Path, copy: Path) -> None:
    """Copy `database` as it stands (WAL included, consistently) with SQLite's backup API."""
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)


@contextmanager
def _attached(database: Path, copy: Path) -> Iterator[Connection]:
    """A connection to `database` with `copy` attached as COPY, for reading both; unpooled, so
    the attachment ends with it and the project's engines never see it."""
    engine = create_engine(f"sqlite:///{database}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            # ATTACH has no SQLAlchemy construct; the path goes in as a parameter.
            conn.exec_driver_sql(f"ATTACH DATABASE ? AS {COPY}", (str(copy),))
            yield conn
    finally:
        engine.dispose()


def _keyed_tables() -> list[Table]:
    """The tables with one integer primary key, parents first (foreign keys are enforced)."""
    return [
        t for t in target_metadata.sorted_tables
        if len(t.primary_key.columns) == 1
        and isinstance(next(iter(t.primary_key.columns)).type, Integer)
    ]  # fmt: skip


def _copy_of(table: Table) -> Table:
    return table.to_metadata(MetaData(), schema=COPY)


def _written(conn: Connection, table: Table) -> _Written:
    """Rows with a key above the copy's highest were inserted; rows under a key both files hold
    that differ in any column were changed (their new values, and the columns that differ)."""
    before = _copy_of(table)
    key = next(iter(table.primary_key.columns))
    top = conn.execute(select(func.coalesce(func.max(before.c[key.name]), 0))).scalar_one()
    written = _Written(table)
    inserted = select(table).where(key > top).order_by(key)
    written.inserted = [dict(r) for r in conn.execute(inserted).mappings()]
    # Both sides aliased: the SQLite dialect aliases one of two same-named tables in the FROM
    # clause and then names the other in the WHERE clause, comparing the copy with itself.
    new, old = table.alias("new"), before.alias("old")
    differs = [c.is_distinct_from(old.c[c.name]) for c in new.c]
    pairs = select(new, old).join(old, old.c[key.name] == new.c[key.name]).where(or_(*differs))
    width, changed = len(table.c), set[str]()
    for row in conn.execute(pairs.order_by(new.c[key.name])):
        after, prior = row[:width], row[width:]
        changed.update(c.name for c, a, b in zip(table.c, after, prior, strict=True) if a != b)
        written.updated.append(dict(zip(table.c.keys(), after, strict=True)) | {"_old": prior})
    written.columns = [c.name for c in table.c if c.name in changed]
    kept = conn.execute(select(func.count()).select_from(table).where(key <= top)).scalar_one()
    if kept != conn.execute(select(func.count()).select_from(before)).scalar_one():
        raise FloorMismatch(f"the pass deleted {table.name} rows; the floor only writes rows")
    return written


def _chunks(rows: Sequence[dict[str, Any]], count: int) -> list[list[dict[str, Any]]]:
    """`rows` in `count` near-equal runs, in order."""
    bounds = [round(i * len(rows) / count) for i in range(count + 1)]
    return [list(rows[a:b]) for a, b in itertools.pairwise(bounds)]


def _update(w: _Written) -> Executable:
    """UPDATE … SET the changed columns WHERE key = :b_key, built once for an executemany."""
    key = next(iter(w.table.primary_key.columns))
    values = {c: bindparam(f"v_{c}", type_=w.table.c[c].type) for c in w.columns}
    return w.table.update().where(key == bindparam("b_key", type_=key.type)).values(values)


def _update_rows(w: _Written) -> list[dict[str, Any]]:
    """The UPDATE's parameters, in the pass's order for the driver (due_visits: by the old
    next_action_at, then id), else by key."""
    key = next(iter(w.table.primary_key.columns)).name
    rows = w.updated
    if w.table.name == DRIVER:
        at = list(w.table.c.keys()).index("next_action_at")
        rows = sorted(rows, key=lambda r: (r["_old"][at], r[key]))
    return [{"b_key": r[key]} | {f"v_{c}": r[c] for c in w.columns} for r in rows]


def _own_transaction(table: Table, row: dict[str, Any]) -> bool:
    return table.name == "outboxmessage" and str(row["purpose"]).startswith(DIGEST)


def _plan(written: Sequence[_Written]) -> list[list[Step]]:
    """The floor's transactions: the driver's changed rows BATCH at a time in the pass's order,
    as the pass took them; every other table's rows in as many near-equal runs, in key order (a
    row's cost hardly depends on which of them it is written in); the digest in one of its own.
    """
    driver = next(w for w in written if w.table.name == DRIVER)
    count = max(1, math.ceil(len(driver.updated) / BATCH))
    batches: list[list[Step]] = [[] for _ in range(count)]
    last: list[Step] = []
    for w in written:
        if w.updated:
            rows = _update_rows(w)
            runs = ([rows[i : i + BATCH] for i in range(0, len(rows), BATCH)] if w is driver
                    else _chunks(rows, count))  # fmt: skip
            batches = _add(batches, _update(w), runs)
        insert = w.table.insert()
        rest = [r for r in w.inserted if not _own_transaction(w.table, r)]
        batches = _add(batches, insert, _chunks(rest, count))
        if own := [r for r in w.inserted if _own_transaction(w.table, r)]:
            last.append((insert, own))
    return [b for b in batches if b] + ([last] if last else [])


def _add(batches: list[list[Step]], statement: Executable, runs: Sequence[list[dict[str, Any]]]
         ) -> list[list[Step]]:  # fmt: skip
    """Each batch with its run of rows for `statement`, if it has any."""
    return [[*b, (statement, run)] if run else b for b, run in zip(batches, runs, strict=True)]


def _run(engine: Engine, plan: Sequence[list[Step]]) -> None:
    """The floor's writes: each transaction's executemany calls, nothing read."""
    for steps in plan:
        with transaction(engine) as session:
            conn = session.connection()
            for statement, rows in steps:
                conn.execute(statement, rows)


class _Rollback(Exception):
    """Raised inside the rehearsal's transaction to roll it back."""


def _rehearse(engine: Engine, plan: Sequence[list[Step]]) -> None:
    """Write the floor once in one transaction and roll it back, as `bench.dispatch.measure`
    dry-runs the pass before timing it: the same warm caches and statement caches for both."""
    try:
        with transaction(engine) as session:
            conn = session.connection()
            for steps in plan:
                for statement, rows in steps:
                    conn.execute(statement, rows)
            raise _Rollback
    except _Rollback:
        return


def _differences(conn: Connection) -> dict[str, int]:
    """Per table of the metadata, the rows one file holds and the other does not (every
    column compared), where there are any."""
    found = {}
    for table in target_metadata.sorted_tables:
        copy = _copy_of(table)
        count = 0
        for a, b in ((table, copy), (copy, table)):
            only = select(a).except_(select(b)).subquery()
            count += conn.execute(select(func.count()).select_from(only)).scalar_one()
        if count:
            found[table.name] = count
    return found


def measure_floor(database: Path, copy: Path) -> Floor:
    """The floor of the pass that made `database` of what `copy` holds (`copy_before`): timed
    on `copy`, which must then hold what `database` holds, every table and column."""
    with _attached(database, copy) as conn:
        written = [_written(conn, table) for table in _keyed_tables()]
    plan = _plan(written)
    engine = make_engine(f"sqlite:///{copy}")
    try:
        _rehearse(engine, plan)
        gc.collect()  # as before the pass (bench.dispatch.settle_garbage): not the diff's garbage
        start = time.perf_counter()
        _run(engine, plan)
        seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    with _attached(database, copy) as conn:
        if left := _differences(conn):
            raise FloorMismatch(f"rows differ between the pass's database and the floor's: {left}")
    rows = {w.table.name: len(w.inserted) + len(w.updated) for w in written}
    return Floor(seconds, {name: n for name, n in rows.items() if n}, len(plan))
