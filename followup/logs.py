"""Logging set-up that keeps the token and message contents out of every log line."""

from __future__ import annotations

import logging

# Library loggers that would leak at DEBUG or INFO: httpx and httpcore log request URLs, which
# contain the bot token; python-telegram-bot logs the token URL, every request's parameters
# (message texts) and every update (names, texts) at DEBUG.
LEAKY_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.INFO,
    "aiohttp.access": logging.WARNING,
    "apscheduler": logging.WARNING,
}


def quiet_leaky_loggers() -> None:
    """Keep the token and message contents out of the logs even when the root logs DEBUG."""
    for name, level in LEAKY_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < level:
            logger.setLevel(level)


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_leaky_loggers()
