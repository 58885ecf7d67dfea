"""Start and stop the bot: polling, the outbox sender and the periodic passes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.app import build_application, prepare
from bot.deps import BotApp, Deps
from bot.durable import DurableBot
from bot.replies import sender
from bot.webhook import WebhookConfig, WebhookServer
from scheduler.dispatch import dispatch_job
from scheduler.runner import PeriodicJob, start_scheduler

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 15.0  # longest a stop waits for sends under way (python-telegram-bot's
# own timeouts end one request within about 15 s)


@asynccontextmanager
async def running(
    deps: Deps,
    *,
    token: str,
    poll_timeout: float = 10.0,
    with_scheduler: bool = True,
    webhook: WebhookConfig | None = None,
) -> AsyncIterator[BotApp]:
    """Run the bot (long polling, or a webhook) until the block exits; tests drive passes."""
    application = build_application(deps, token=token)
    await application.initialize()
    await prepare(application)
    await application.start()
    assert isinstance(application.bot, DurableBot) and application.updater is not None
    pending = await application.bot.replay_pending()
    if pending:
        log.info(
            "replaying %d update(s) accepted but not handled before the last stop", len(pending)
        )
    for update in pending:
        await application.update_queue.put(update)
    server = WebhookServer(application, webhook) if webhook else None
    if server is not None:
        await server.start()
    else:
        await application.updater.start_polling(
            timeout=dt.timedelta(seconds=poll_timeout), drop_pending_updates=False
        )
    scheduler = None
    if with_scheduler:
        outbox = sender(application)
        scheduler = start_scheduler(
            [PeriodicJob("outbox", outbox.flush, seconds=5), dispatch_job(deps, outbox.flush)]
        )
    try:
        yield application
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        if server is not None:
            await server.stop()
        else:
            await application.updater.stop()
        # Handle what the stopped intake recorded but never queued: a stop must not leave
        # accepted updates (a participant's last answer) waiting for a start that may not come.
        await application.update_queue.join()
        if left := await application.bot.left_behind():
            log.info("handling %d update(s) accepted as intake stopped", len(left))
            for update in left:
                await application.update_queue.put(update)
        # A send already handed to Telegram records its outcome before the HTTP client closes;
        # cut off, it would be sent again after the restart. Bounded: a stop must not hang.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sender(application).settled(), timeout=STOP_GRACE_SECONDS)
        await application.stop()
        await application.shutdown()


async def serve(deps: Deps, *, token: str, webhook: WebhookConfig | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running(deps, token=token, webhook=webhook):
        log.info("bot running; waiting for SIGINT or SIGTERM")
        await stop.wait()
    log.info("bot stopped")
