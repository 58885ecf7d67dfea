"""A throwaway PostgreSQL cluster from the machine's binaries, for the test session."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(Exception):
    """No PostgreSQL binaries on this machine."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[::-1]), None
    )
    if found is None:
        raise PostgresUnavailable(f"{name} not found on PATH or in /usr/lib/postgresql/*/bin")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    directory: Path
    port: int
    prefix: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        data = str(self.directory / "data")
        command = [*self.prefix, _binary("pg_ctl"), "-D", data, "-m", "immediate", "stop"]
        subprocess.run(command, capture_output=True, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster() -> Cluster:
    """initdb and start a cluster on a free loopback port; as root, run it as `postgres`."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    directory = Path(tempfile.mkdtemp(prefix="followup-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(directory, "postgres", "postgres")
    directory.chmod(0o700)
    data = directory / "data"
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
         "--no-locale"], capture_output=True, check=True,
    )  # fmt: skip
    port = _free_port()
    options = (
        f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c max_connections=300 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w",
         "start"], capture_output=True, check=True,
    )  # fmt: skip
    return Cluster(directory, port, prefix)
