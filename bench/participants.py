"""The participants and their Telegram in a process of their own: `python -m bench.participants`.

Telegram's servers and the participants' phones never share the bot's CPU. In the conversation
benchmark's other rows they do: the sandbox, the 50 participants and the bot run on one Python
interpreter, so every press and every server reply takes its turn on the GIL with the bot's
work. Here the sandbox and its users run in this child instead (bench/conversation.py starts it
through sandbox/process.SandboxProcess).

It prints the same first line as `python -m sandbox`, then answers requests, one JSON line each:
`{"first_presses": [...], "answers": k}` runs one conversation (`conversation.converse`) and
prints its figures as one JSON line, with the share of the run this process spent on the CPU.
It stops when its standard input closes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time

import typer

from bench.conversation import converse
from sandbox.process import child_command
from sandbox.server import Sandbox, SandboxUser


async def serve(sandbox: Sandbox, users: list[SandboxUser]) -> None:
    loop = asyncio.get_running_loop()
    # Blocking reads on a worker thread: asyncio has no portable non-blocking stdin.
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        request = json.loads(line)
        cpu = time.process_time()
        figures = await converse(sandbox, users, request["first_presses"], request["answers"])
        # How busy this side was: near 1.0 would make it, not the bot, the ceiling.
        figures.server_busy = (time.process_time() - cpu) / figures.seconds
        sys.stdout.write(json.dumps(dataclasses.asdict(figures)) + "\n")
        sys.stdout.flush()


main = child_command(
    serve, "Serve the sandbox and drive its participants on request, until standard input closes."
)

if __name__ == "__main__":
    typer.run(main)
