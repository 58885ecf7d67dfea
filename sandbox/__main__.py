"""Serve the sandbox in a process of its own: `python -m sandbox [--users N]`.

Telegram's servers never share the bot's CPU; a sandbox inside the bot's process does, and then
every request's server half competes with the bot for the same interpreter. The benchmarks that
measure the bot's own sending cost run the sandbox here instead (bench/unlimited.py).

When it is listening it prints one JSON line, `{"port", "api_url", "token", "users"}` (the ids of
the `--users` participants it made), and then serves until its standard input closes, so it
never outlives the process that started it. The user side is served over HTTP under
`/sandbox/...` (sandbox/user_api.py), `/sandbox/stats` among it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from sandbox.process import announce
from sandbox.server import Sandbox


async def serve(users: int, port: int) -> None:
    sandbox = await Sandbox().start(port=port)
    try:
        announce(sandbox, [sandbox.add_user().id for _ in range(users)])
        # Blocking read on a worker thread: asyncio has no portable non-blocking stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    finally:
        await sandbox.stop()


def main(
    users: Annotated[int, typer.Option(min=0, help="participants to add before serving")] = 0,
    port: Annotated[int, typer.Option(min=0, help="0 picks a free port")] = 0,
) -> None:
    """Serve the loopback sandbox until standard input closes."""
    asyncio.run(serve(users, port))


if __name__ == "__main__":
    typer.run(main)
