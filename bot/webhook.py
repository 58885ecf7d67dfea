"""Webhook mode: Telegram POSTs updates here; each is recorded in the inbox before the 200.

python-telegram-bot's own webhook server answers 200 before the handlers run and compares the
secret token with `!=`. This small aiohttp endpoint compares in constant time and acknowledges an
update only once it is durable, so a kill after the 200 loses nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field

from aiohttp import web
from telegram import Update

from bot.deps import BotApp
from bot.durable import DurableBot

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class WebhookConfig:
    """Where Telegram should POST (`url`), where we listen, and the shared secret."""

    url: str
    host: str = "127.0.0.1"
    port: int = 8443
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def path(self) -> str:
        from urllib.parse import urlparse

        return urlparse(self.url).path or "/"


class WebhookServer:
    """Accepts Telegram's POSTs for one application."""

    def __init__(self, application: BotApp, config: WebhookConfig) -> None:
        self.application, self.config = application, config
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(self.config.path, self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        await self.application.bot.set_webhook(
            self.config.url, secret_token=self.config.secret, allowed_updates=Update.ALL_TYPES
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.config.secret.encode()):
            log.warning("webhook request refused: missing or wrong secret token")
            return web.Response(status=403)
        try:
            payload = json.loads(await request.read())
            update = Update.de_json(payload, self.application.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400)
        bot = self.application.bot
        assert isinstance(bot, DurableBot)
        for accepted in await bot.accept((update,)):
            await self.application.update_queue.put(accepted)
        return web.Response(status=200)
