"""Invite tokens and the throttle on failed link attempts."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable
from enum import StrEnum

# Telegram allows A-Z, a-z, 0-9, "_" and "-" in a start parameter, at most 64 characters.
START_PARAMETER = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOKEN_BYTES = 24  # 192 bits of randomness, 32 characters


class InviteState(StrEnum):
    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


def new_token() -> str:
    """A fresh single-use token: 192 random bits, url-safe, valid as a start parameter."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The stored form of a token. 192 random bits need no slow hash to resist guessing."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def looks_like_token(value: str) -> bool:
    return START_PARAMETER.fullmatch(value) is not None


def invite_state(
    *,
    expires_at: dt.datetime,
    used_at: dt.datetime | None,
    revoked_at: dt.datetime | None,
    now: dt.datetime,
) -> InviteState:
    if revoked_at is not None:
        return InviteState.REVOKED
    if used_at is not None:
        return InviteState.USED
    if now >= expires_at:
        return InviteState.EXPIRED
    return InviteState.VALID


def deep_link(bot_username: str | None, token: str) -> str:
    """The t.me deep link, or the bare token when the bot's username is unknown."""
    if not bot_username:
        return token
    return f"https://t.me/{bot_username.lstrip('@')}?start={token}"


def is_throttled(
    failures: Iterable[dt.datetime], *, now: dt.datetime, limit: int, window: dt.timedelta
) -> bool:
    """True when a user has failed `limit` times within `window` before `now`."""
    recent = [at for at in failures if now - window < at <= now]
    return len(recent) >= limit


def user_key(telegram_user_id: int) -> str:
    """A stable pseudonym for a Telegram user who is not (yet) a participant."""
    return hashlib.sha256(f"tg-user:{telegram_user_id}".encode()).hexdigest()
