"""What the sandbox remembers: users, chats, messages, pending updates and every API call."""

from __future__ import annotations

import html
import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_TAG = re.compile(r"<[^>]+>")


def plain_text(markup: str) -> str:
    """What a Telegram client shows for an HTML-formatted text."""
    return html.unescape(_TAG.sub("", markup))


@dataclass(frozen=True)
class SandboxUser:
    """A person on the user side of the sandbox; a private chat has the user's id."""

    id: int
    first_name: str = "Test"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "zh"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def private_chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": "private", "first_name": self.first_name}


@dataclass
class BotMessage:
    """A message the bot sent, as the chat shows it now (edits applied)."""

    chat_id: int
    message_id: int
    html: str
    reply_markup: dict[str, Any] | None
    date: int
    edits: list[str] = field(default_factory=list)
    sent_at: float = 0.0

    @property
    def text(self) -> str:
        return plain_text(self.html)

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]

    def button(self, label_part: str) -> str:
        """The callback_data of the first button whose label contains `label_part`."""
        for label, data in self.buttons:
            if label_part in label:
                return data
        raise KeyError(f"no button containing {label_part!r} in {self.buttons}")


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    at: float
    status: int
    description: str = ""


@dataclass
class SandboxState:
    bot_id: int = 7000000001
    bot_username: str = "followup_sandbox_bot"
    users: dict[int, SandboxUser] = field(default_factory=dict)
    blocked_by: set[int] = field(default_factory=set)
    messages: dict[tuple[int, int], BotMessage] = field(default_factory=dict)
    sent: list[BotMessage] = field(default_factory=list)
    # The same messages by chat: a test waiting on one chat must not scan every chat's messages
    # on every change (with 200 chats that is quadratic and starves the sandbox).
    by_chat: dict[int, list[BotMessage]] = field(default_factory=dict)
    call_counts: Counter[str] = field(default_factory=Counter)  # every call, by method
    updates: list[dict[str, Any]] = field(default_factory=list)
    calls: list[ApiCall] = field(default_factory=list)
    callback_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    pressed: list[str] = field(default_factory=list)
    commands: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    webhook_url: str = ""
    webhook_secret: str | None = None
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _user_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(500001))
    _callback_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Follow-up",
            "username": self.bot_username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def next_message_id(self) -> int:
        return next(self._message_ids)

    def next_user_id(self) -> int:
        return next(self._user_ids)

    def next_callback_id(self) -> str:
        return f"cb{next(self._callback_ids)}"

    def message_dict(self, message: BotMessage) -> dict[str, Any]:
        user = self.users.get(message.chat_id)
        chat = user.private_chat() if user else {"id": message.chat_id, "type": "private"}
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": chat,
            "from": self.bot_user(),
            "text": message.text,
        }
        if message.reply_markup:
            data["reply_markup"] = message.reply_markup
        if message.edits:
            data["edit_date"] = int(time.time())
        return data
