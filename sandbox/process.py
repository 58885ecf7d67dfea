"""Start `python -m sandbox` as a child process and talk to its user side over HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import httpx
import typer

from sandbox.server import Sandbox, SandboxUser

# What a child does once its sandbox is announced; it returns when its standard input closes.
Serving = Callable[[Sandbox, list[SandboxUser]], Awaitable[None]]


async def serve_child(users: int, port: int, work: Serving) -> None:
    """Start a sandbox with `users` participants, announce it, run `work`, then stop it."""
    sandbox = await Sandbox().start(port=port)
    try:
        made = [sandbox.add_user() for _ in range(users)]
        announce(sandbox, [user.id for user in made])
        await work(sandbox, made)
    finally:
        await sandbox.stop()


def child_command(work: Serving, summary: str) -> Callable[..., None]:
    """The `python -m ...` entry point of a child that serves a sandbox (`typer.run` it)."""

    def main(
        users: Annotated[int, typer.Option(min=0, help="participants to add before serving")] = 0,
        port: Annotated[int, typer.Option(min=0, help="0 picks a free port")] = 0,
    ) -> None:
        asyncio.run(serve_child(users, port, work))

    main.__doc__ = summary
    return main


def announce(sandbox: Sandbox, users: list[int]) -> None:
    """The child's first line: where it listens, its token, the ids of the users it made."""
    ready = {"port": sandbox.port, "api_url": sandbox.api_url, "token": sandbox.token,
             "users": users}  # fmt: skip
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()


class SandboxProcess:
    """`async with SandboxProcess(users=n) as sandbox:` a sandbox with its own interpreter.

    The child serves until its standard input closes; leaving the block closes it and waits.
    `module` runs another child that serves a sandbox the same way (bench/participants.py, which
    also drives its users); `ask` sends it one request line and reads one line back.
    """

    def __init__(self, *, users: int = 0, module: str = "sandbox") -> None:
        self.users_wanted = users
        self.module = module
        self.port = 0
        self.api_url = ""
        self.token = ""
        self.users: list[int] = []
        self._child: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> SandboxProcess:
        self._child = child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, "--users", str(self.users_wanted),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert child.stdout is not None
        line = await child.stdout.readline()
        if not line:
            await child.wait()
            raise RuntimeError(
                f"python -m {self.module} exited with {child.returncode} before serving"
            )
        ready = json.loads(line)
        self.port, self.api_url, self.token = ready["port"], ready["api_url"], ready["token"]
        self.users = list(ready["users"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        assert child.stdin is not None
        child.stdin.close()
        if await child.wait() != 0:
            raise RuntimeError(f"python -m {self.module} exited with {child.returncode}")

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """One JSON line to the child, one JSON line back (a child that reads requests)."""
        child = self._child
        assert child is not None and child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(request).encode() + b"\n")
        await child.stdin.drain()
        line = await child.stdout.readline()
        if not line:
            raise RuntimeError(f"python -m {self.module} exited with {await child.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stats(self) -> dict[str, Any]:
        """The child's /sandbox/stats: messages sent, updates pending, calls made."""
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{self.port}/sandbox/stats")
            response.raise_for_status()
            stats: dict[str, Any] = response.json()
            return stats
