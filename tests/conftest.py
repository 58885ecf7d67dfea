"""Fixtures: a fresh database per test on SQLite and on a real PostgreSQL, the sandbox, the bot."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bot.deps import BotApp, Deps
from bot.runtime import running
from followup.settings import Settings, load_settings
from models import schema
from models.db import make_engine
from sandbox import Sandbox
from scheduler.clock import FrozenClock
from tests import pg
from tests.leaks import leaks, secrets_of

BACKENDS = [
    b.strip() for b in os.environ.get("FOLLOWUP_TEST_BACKENDS", "sqlite,postgresql").split(",")
]
IN_CI = os.environ.get("CI", "").lower() == "true"
# 2026-03-02 02:00 UTC is 10:00 in Shanghai, a Monday.
START = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a migrated template database on a throwaway PostgreSQL cluster."""
    external = os.environ.get("FOLLOWUP_TEST_POSTGRES_URL")
    cluster = None
    if external:
        admin_url = external
    else:
        try:
            cluster = pg.start_cluster()
        except pg.PostgresUnavailable as exc:
            if IN_CI:
                pytest.fail(f"CI=true requires PostgreSQL: {exc}")
            pytest.skip(f"PostgreSQL tests need the PostgreSQL server binaries: {exc}")
        admin_url = cluster.url
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS followup_template"))
        conn.execute(text("CREATE DATABASE followup_template"))
    template = make_engine(admin_url.rsplit("/", 1)[0] + "/followup_template")
    schema.upgrade(template)
    template.dispose()
    yield admin_url
    admin.dispose()
    if cluster is not None:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    schema.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh, migrated database for one test, on each backend in turn."""
    if request.param == "sqlite":
        path = tmp_path / "followup.db"
        shutil.copy(sqlite_template, path)
        path.chmod(0o600)
        yield f"sqlite:///{path}"
        return
    admin_url: str = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE followup_template"))
    yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        telegram_token=Sandbox().token,
        bot_username="followup_sandbox_bot",
        coordinator_chat_id=None,
        timezone="Asia/Shanghai",
    )


@pytest.fixture
def deps(settings: Settings, engine: Engine, clock: FrozenClock) -> Deps:
    return Deps(settings=settings, engine=engine, clock=clock)


SESSION_LOG = Path(tempfile.gettempdir()) / f"followup-tests-{os.getpid()}.log"
SESSION_SECRETS: dict[str, str] = {}


@pytest.fixture(scope="session", autouse=True)
def debug_log_for_the_whole_suite() -> Iterator[Path]:
    """The whole suite logs at DEBUG into one file; pytest_sessionfinish searches it for leaks."""
    handler = logging.FileHandler(SESSION_LOG, mode="w", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    yield SESSION_LOG
    root.removeHandler(handler)
    handler.close()
    root.setLevel(previous)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any DEBUG log line of the suite holds the token, a name or a message."""
    if not SESSION_LOG.exists():
        return
    found = leaks(SESSION_LOG.read_text(encoding="utf-8", errors="replace"), SESSION_SECRETS)
    if found:
        sys.stderr.write(f"\nLEAK: the DEBUG log of this run contains: {found[:10]}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    SESSION_LOG.unlink(missing_ok=True)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sb:
        yield sb
    SESSION_SECRETS.update(secrets_of(sb))


@pytest.fixture
async def bot(sandbox: Sandbox, deps: Deps) -> AsyncIterator[BotApp]:
    """The real bot, polling the sandbox over HTTP; periodic passes are driven by the test."""
    deps.settings = deps.settings.model_copy(update={"telegram_api_url": sandbox.api_url})
    async with running(deps, token=sandbox.token, poll_timeout=5, with_scheduler=False) as app:
        yield app
