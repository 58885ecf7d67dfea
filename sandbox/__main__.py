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

import typer

from sandbox.process import child_command
from sandbox.server import Sandbox, SandboxUser


async def serve(sandbox: Sandbox, users: list[SandboxUser]) -> None:
    # Blocking read on a worker thread: asyncio has no portable non-blocking stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)


main = child_command(serve, "Serve the loopback sandbox until standard input closes.")

if __name__ == "__main__":
    typer.run(main)
