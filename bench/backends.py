"""Fresh, migrated databases for a benchmark run: a SQLite file, or one on a throwaway PostgreSQL.

The cluster comes from tests/pg.py (initdb and pg_ctl from the machine; as root it runs as the
`postgres` user), so the benchmarks and the test suite start PostgreSQL the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from models import schema
from models.db import make_engine
from tests import pg


class Postgres:
    """A running throwaway cluster with a migrated template database to copy from."""

    def __init__(self, cluster: pg.Cluster) -> None:
        self.cluster = cluster
        self._admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
        self.template = self.create(template=None)
        engine = make_engine(self.url_of(self.template))
        schema.upgrade(engine)
        engine.dispose()

    def url_of(self, name: str) -> str:
        return self.cluster.url.rsplit("/", 1)[0] + f"/{name}"

    def create(self, *, template: str | None) -> str:
        name = f"b_{uuid.uuid4().hex[:12]}"
        copy = f" TEMPLATE {template}" if template else ""
        with self._admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}{copy}"))
        return name

    def fresh_url(self) -> str:
        """The URL of a new, migrated, empty database."""
        return self.url_of(self.create(template=self.template))

    def drop(self, url: str) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)"))

    def close(self) -> None:
        self._admin.dispose()
        self.cluster.stop()


@contextmanager
def postgres() -> Iterator[Postgres]:
    """Start a throwaway cluster for the block; raises pg.PostgresUnavailable without binaries."""
    server = Postgres(pg.start_cluster())
    try:
        yield server
    finally:
        server.close()


def sqlite_url(workdir: Path) -> str:
    """A new, migrated SQLite file in `workdir`, with the settings as shipped (models/db.py)."""
    path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
    engine = make_engine(f"sqlite:///{path}")
    schema.upgrade(engine)
    engine.dispose()
    return f"sqlite:///{path}"
