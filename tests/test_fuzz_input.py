"""Hostile and odd input through the real bot: nothing crashes, nothing Telegram would refuse.

Hypothesis drives one running bot per test (the examples share it, which is the point: state
accumulates as it would in a long conversation). After each input the bot must have handled it
without an error, sent nothing Telegram refuses (unparsable HTML, over 4,096 characters), and
changed nothing outside the sender's own check-in.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.deps import BotApp
from bot.durable import DurableBot
from models.checkin_tables import CheckInAnswer
from models.db import transaction
from models.tables import Participant
from sandbox import Sandbox, SandboxUser
from scheduler.clock import FrozenClock
from tests.checkin_chat import linked_chat

# An example takes a tenth of a second or so (it waits for its updates to be handled, not for a
# long poll to end): CI runs 100 a test; FOLLOWUP_FUZZ_EXAMPLES=500 is a longer run
# (docs/reliability.md).
FUZZ = settings(
    max_examples=int(os.environ.get("FOLLOWUP_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Texts built to hurt: control characters, right-to-left marks, emoji, HTML and Markdown
# metacharacters, template syntax, and the odd very long one.
NASTY = st.sampled_from(
    ["<b>", "</i>", "&", "&amp;", "<script>alert(1)</script>", "{{ 7*7 }}", "{% raw %}",
     "*_`[]()~>#+-=|{}.!", "\u202e", "\u200f", "\x00", "\x1b[31m", "🙂", "胸", "开始", "退出",
     "/start", "/withdraw", "/help", "\n", " "]
)  # fmt: skip
TEXTS = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(NASTY, st.text(max_size=20)), max_size=30).map("".join),
    st.builds(
        lambda s, n: s * n,
        st.sampled_from(["<", "&", "{{", "啊", "a"]),
        st.integers(min_value=1000, max_value=10_000),
    ),
)
COMMANDS = st.sampled_from(
    ["/start", "/start bogus", "/help", "/language", "/next", "/privacy", "/withdraw",
     "/alerts", "/due", "/participant P001", "/unknown"]
)  # fmt: skip
MEDIA = st.sampled_from(
    [("sticker", {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1,
                  "height": 1, "is_animated": False, "is_video": False}),
     ("photo", [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}]),
     ("voice", {"file_id": "v", "file_unique_id": "v", "duration": 1}),
     ("location", {"latitude": 39.9, "longitude": 116.4}),
     ("contact", {"phone_number": "+8610000000", "first_name": "X"})]
)  # fmt: skip


def _refusals(sandbox: Sandbox) -> list[tuple[str, int, str]]:
    """Calls Telegram would refuse for our fault: unparsable HTML or an overlong text."""
    return [
        (c.method, c.status, c.description)
        for c in sandbox.state.calls
        if c.status == 400 and ("parse entities" in c.description or "too long" in c.description)
    ]


@pytest.fixture(autouse=True)
def handled_wakes_the_wait(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    """The bot marks an update handled without calling the Bot API, so the sandbox cannot see
    it; wake `_handled`'s wait then, instead of at the next sandbox event (the next long poll's
    end, up to 5 s later, which was the whole time of an example)."""
    original = DurableBot.mark_handled

    async def mark_handled(self: DurableBot, update_id: int) -> None:
        await original(self, update_id)
        await sandbox.notify_waiters()

    monkeypatch.setattr(DurableBot, "mark_handled", mark_handled)


async def _handled(bot: BotApp, sandbox: Sandbox) -> None:
    """Until every update pushed so far is confirmed (by the bot's next getUpdates) and handled
    (its inbox row marked); each wakes the wait as it happens."""
    durable: Any = bot.bot
    await sandbox.wait_until(lambda: not sandbox.state.updates and not durable._in_flight)


def _state(engine: Engine) -> tuple[list[tuple[str, str, bool]], list[tuple[str, bool]]]:
    with transaction(engine) as session:
        participants = [
            (p.study_id, p.status, p.chat_contact) for p in session.exec(select(Participant))
        ]
        answers = [(a.item, a.current) for a in session.exec(select(CheckInAnswer))]
    return participants, answers


@pytest.fixture
async def two_chats(
    bot: BotApp, sandbox: Sandbox, engine: Engine, clock: FrozenClock
) -> tuple[SandboxUser, SandboxUser]:
    """P001 in the middle of a check-in, and P002 linked with nothing open."""
    first = await linked_chat(sandbox, engine, clock, "P001")
    await first.say("开始")
    second = await linked_chat(sandbox, engine, clock, "P002", with_visit=False)
    return first.user, second.user


@FUZZ
@given(text=TEXTS)
async def test_random_text_from_a_stranger_changes_nothing(
    bot: BotApp, sandbox: Sandbox, engine: Engine, two_chats: object, text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    before = _state(engine)
    stranger = sandbox.add_user()
    await sandbox.send_text(stranger, text or " ")
    await _handled(bot, sandbox)
    assert _state(engine) == before
    assert _refusals(sandbox) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@FUZZ
@given(text=TEXTS)
async def test_random_text_from_a_participant_never_crashes_or_breaks_telegram(
    bot: BotApp, sandbox: Sandbox, engine: Engine, two_chats: tuple[SandboxUser, SandboxUser],
    text: str, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    in_checkin, _idle = two_chats
    other_before = [row for row in _state(engine)[0] if row[0] != "P001"]
    await sandbox.send_text(in_checkin, text or " ")
    await _handled(bot, sandbox)
    participants, _ = _state(engine)
    assert [row for row in participants if row[0] != "P001"] == other_before  # only the sender
    assert _refusals(sandbox) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@FUZZ
@given(command=COMMANDS, media=MEDIA, forged=st.text(max_size=80))
async def test_commands_media_forged_buttons_edits_and_groups(
    bot: BotApp, sandbox: Sandbox, engine: Engine, two_chats: tuple[SandboxUser, SandboxUser],
    command: str, media: tuple[str, Any], forged: str, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    in_checkin, idle = two_chats
    answers_before = _state(engine)[1]
    await sandbox.send_text(idle, command)
    await sandbox.send_other(idle, *media)
    last = sandbox.messages_to(in_checkin.id)[-1]
    await sandbox.press(idle, last, forged or "x")  # someone else's message, any data
    await sandbox.press(idle, last, last.buttons[0][1] if last.buttons else "ci:1:1:self")
    await sandbox.push_update({"edited_message": {
        "message_id": 1, "date": 0, "edit_date": 1, "chat": idle.private_chat(),
        "from": idle.as_dict(), "text": command}})  # fmt: skip
    group = {"id": -4242, "type": "group", "title": "family"}
    await sandbox.send_text(idle, command, chat=group)
    await _handled(bot, sandbox)
    assert _state(engine)[1] == answers_before  # nobody else's check-in moved
    assert sandbox.messages_to(-4242) == []
    assert _refusals(sandbox) == []
    assert sandbox.unanswered_callbacks() == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
