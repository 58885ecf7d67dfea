"""Webhook mode: the secret is required, and an acknowledged update is durable."""

from __future__ import annotations

import socket

import httpx
import pytest
from sqlmodel import select

from bot.app import build_application
from bot.deps import Deps
from bot.runtime import running
from bot.webhook import SECRET_HEADER, WebhookConfig, WebhookServer
from messages.render import render
from models.db import transaction
from models.inbox import InboxUpdate
from models.participants import IssuedInvite
from sandbox import Sandbox, SandboxUser
from sandbox.state import plain_text
from scheduler.clock import FrozenClock
from tests.factories import enroll_participant


def _config() -> WebhookConfig:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return WebhookConfig(url=f"http://127.0.0.1:{port}/telegram", port=port)


Case = tuple[IssuedInvite, SandboxUser, WebhookConfig]


@pytest.fixture
def webhook_case(sandbox: Sandbox, deps: Deps, clock: FrozenClock) -> Case:
    """A participant's invite, the sandbox user who will open it, and a webhook on a free port."""
    deps.settings = deps.settings.model_copy(update={"telegram_api_url": sandbox.api_url})
    return enroll_participant(deps.engine, clock), sandbox.add_user(), _config()


async def test_updates_arrive_by_webhook_and_are_answered(
    sandbox: Sandbox, deps: Deps, webhook_case: Case
) -> None:
    invite, user, config = webhook_case
    async with running(deps, token=sandbox.token, with_scheduler=False, webhook=config):
        assert sandbox.state.webhook_url == config.url
        await sandbox.send_command(user, "start", invite.token)
        greeting = await sandbox.next_message(user.id, after=0)
    assert greeting.text == plain_text(render("greeting", "zh"))
    assert sandbox.webhook_statuses == [200]


async def test_a_request_without_the_right_secret_gets_403_and_is_not_processed(
    sandbox: Sandbox, deps: Deps, webhook_case: Case
) -> None:
    invite, user, config = webhook_case
    forged = {"update_id": 77, "message": {"message_id": 1, "date": 0, "chat": user.private_chat(),
              "from": user.as_dict(), "text": f"/start {invite.token}",
              "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}  # fmt: skip
    async with (
        running(deps, token=sandbox.token, with_scheduler=False, webhook=config),
        httpx.AsyncClient() as client,
    ):
        missing = await client.post(config.url, json=forged)
        wrong = await client.post(config.url, json=forged, headers={SECRET_HEADER: "guess"})
        near = await client.post(
            config.url, json=forged, headers={SECRET_HEADER: config.secret[:-1] + "x"}
        )
    assert (missing.status_code, wrong.status_code, near.status_code) == (403, 403, 403)
    assert sandbox.messages_to(user.id) == []
    with transaction(deps.engine) as session:
        assert session.exec(select(InboxUpdate)).all() == []


async def test_an_update_acknowledged_by_webhook_survives_a_kill_before_handling(
    sandbox: Sandbox, deps: Deps, webhook_case: Case
) -> None:
    invite, user, config = webhook_case
    # A process that accepts webhook requests but dies before any handler runs.
    doomed = build_application(deps, token=sandbox.token)
    await doomed.initialize()
    server = WebhookServer(doomed, config)
    await server.start()
    await sandbox.send_command(user, "start", invite.token)
    await sandbox.wait_until(lambda: sandbox.webhook_statuses == [200])
    await server.stop()
    await doomed.shutdown()
    assert sandbox.messages_to(user.id) == []

    async with running(deps, token=sandbox.token, with_scheduler=False, webhook=config):
        greeting = await sandbox.next_message(user.id, after=0)
    assert greeting.text == plain_text(render("greeting", "zh"))
