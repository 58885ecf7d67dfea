"""Settings from the environment and an optional `.env` file, validated at start."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from study.visits import in_quiet_hours

# Telegram bot tokens look like "123456789:AA...": a numeric bot id, a colon, 30+ url-safe chars.
TOKEN_PATTERN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{30,100}$")
QUIET_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


class Settings(BaseSettings):
    """Every knob the operator can turn; names are part of the operator's interface."""

    model_config = SettingsConfigDict(
        env_prefix="FOLLOWUP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///followup.db"
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    # Shared with Telegram by setWebhook; a fresh random one is used at each start when unset.
    webhook_secret: SecretStr | None = None
    bot_username: str | None = None
    coordinator_chat_id: int | None = None
    coordinator_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    timezone: str = "Asia/Shanghai"
    study_end: dt.date = dt.date(2028, 12, 31)
    invite_ttl_days: int = Field(default=30, ge=1, le=365)
    link_attempts_max: int = Field(default=5, ge=1)
    link_attempts_window_minutes: int = Field(default=15, ge=1)
    team_contact: str = "PUMCH K8454 study office"
    # The follow-up schedule (issue 3); see study/visits.py for how they combine.
    visit_interval_months: int = Field(default=3, ge=1, le=12)
    send_hour: int = Field(default=10, ge=0, le=23)
    reminder_days: Annotated[tuple[int, ...], NoDecode] = (3, 7)
    window_days: int = Field(default=14, ge=1, le=60)
    quiet_hours: str = "21:00-08:00"
    dispatch_interval_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Just under Telegram's ~30/s: at 30 the limiter's clock and Telegram's drift apart and
    # draw 429s; at 29 a 10,000-prompt fan-out ran at 95.6% of 30/s with none (benchmarks.md).
    send_rate: float = Field(default=29.0, gt=0, le=30)
    # How long a claimed outbox row stays reserved for its sender. A sender that dies holds it
    # this long; a send must finish well within it, or a second sender may repeat the message.
    send_lease_seconds: float = Field(default=120.0, ge=1, le=3600)
    # Chats the outbox sender serves at once (one chat's messages always go out in order). The
    # rate limiter is first come, first served: a sender with one request in its queue waits
    # behind every reply the handlers are making, and a batch of prompts crawls while
    # participants are answering (the chaos test found this).
    send_concurrency: int = Field(default=8, ge=1, le=64)
    coordinator_language: Literal["zh", "en"] = "zh"
    # Escalation (issue 5): an unacknowledged RED alert is sent again this often, and a daily
    # digest of open alerts and due visits goes to the coordinator chat at this local hour.
    alert_renotify_minutes: int = Field(default=30, ge=1, le=24 * 60)
    digest_hour: int = Field(default=9, ge=0, le=23)

    @field_validator("coordinator_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError as exc:
                raise ValueError("must be comma-separated Telegram user ids") from exc
        return value

    @field_validator("reminder_days", mode="before")
    @classmethod
    def _split_days(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return tuple(int(p) for p in value.split(",") if p.strip())
            except ValueError as exc:
                raise ValueError("must be comma-separated whole days, e.g. 3,7") from exc
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_range(cls, value: str) -> str:
        if not QUIET_PATTERN.match(value):
            raise ValueError("must look like 21:00-08:00 (empty start == end means none)")
        return value

    @model_validator(mode="after")
    def _schedule_fits(self) -> Settings:
        days = self.reminder_days
        if any(d < 1 for d in days) or list(days) != sorted(set(days)):
            raise ValueError("FOLLOWUP_REMINDER_DAYS must be increasing whole days >= 1")
        if days and days[-1] >= self.window_days:
            raise ValueError("FOLLOWUP_REMINDER_DAYS must all fall before FOLLOWUP_WINDOW_DAYS")
        if in_quiet_hours(dt.time(self.send_hour), self.quiet_window()):
            raise ValueError("FOLLOWUP_SEND_HOUR falls inside FOLLOWUP_QUIET_HOURS")
        return self

    def quiet_window(self) -> tuple[dt.time, dt.time]:
        """Quiet hours as (start, end) local times; start == end means no quiet hours."""
        start, end = self.quiet_hours.split("-")
        return dt.time.fromisoformat(start), dt.time.fromisoformat(end)

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_chars(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram allows 1-256 of A-Z a-z 0-9 _ -; we insist on at least 16 for strength.
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()
        ):
            raise ValueError("must be 16-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    def require_token(self) -> str:
        """Return the bot token, or explain why `run` cannot start."""
        if self.telegram_token is None or not self.telegram_token.get_secret_value():
            raise SettingsError(
                "FOLLOWUP_TELEGRAM_TOKEN is not set: create a bot with @BotFather "
                "and put its token in the environment or .env"
            )
        token = self.telegram_token.get_secret_value()
        if not TOKEN_PATTERN.match(token):
            raise SettingsError(
                "FOLLOWUP_TELEGRAM_TOKEN is malformed: expected '<digits>:<secret>' "
                "as issued by @BotFather"
            )
        return token


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into one that names the bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "FOLLOWUP_" + "_".join(str(p) for p in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
