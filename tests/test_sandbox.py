"""The sandbox behaves like Telegram where the bot depends on it, including its refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from followup.logs import quiet_leaky_loggers
from sandbox import Fault, Sandbox
from sandbox.html_check import html_error


@pytest.fixture
async def tg(sandbox: Sandbox) -> Bot:
    quiet_leaky_loggers()  # as the bot's own start does; run alone, this file leaked the token
    bot = Bot(sandbox.token, base_url=sandbox.api_url)
    await bot.initialize()
    return bot


async def test_get_me_and_send_message_have_telegram_shapes(sandbox: Sandbox, tg: Bot) -> None:
    assert tg.username == sandbox.state.bot_username
    user = sandbox.add_user()
    sent = await tg.send_message(user.id, "<b>Hi</b> &amp; welcome", parse_mode="HTML")
    assert sent.chat.id == user.id and sent.message_id > 0
    assert sandbox.messages_to(user.id)[0].text == "Hi & welcome"


async def test_refusals_match_telegram(sandbox: Sandbox, tg: Bot) -> None:
    user = sandbox.add_user()
    with pytest.raises(BadRequest, match=r"(?i)can.t parse entities"):
        await tg.send_message(user.id, "a < b", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await tg.send_message(user.id, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await tg.send_message(999, "hello")
    sandbox.block_bot(user)
    with pytest.raises(Forbidden):
        await tg.send_message(user.id, "hello")


async def test_edit_not_modified_is_refused_like_telegram(sandbox: Sandbox, tg: Bot) -> None:
    user = sandbox.add_user()
    sent = await tg.send_message(user.id, "one")
    await tg.edit_message_text("two", chat_id=user.id, message_id=sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await tg.edit_message_text("two", chat_id=user.id, message_id=sent.message_id)
    assert sandbox.messages_to(user.id)[0].edits == ["one"]


async def test_injected_faults_reach_the_bot_as_telegram_errors(sandbox: Sandbox, tg: Bot) -> None:
    user = sandbox.add_user()
    sandbox.faults.append(Fault(kind="429", retry_after=7))
    with pytest.raises(RetryAfter) as retry:
        await tg.send_message(user.id, "a")
    wait = retry.value.retry_after
    assert (wait.total_seconds() if isinstance(wait, dt.timedelta) else wait) == 7
    sandbox.faults.append(Fault(kind="500"))
    with pytest.raises(NetworkError):
        await tg.send_message(user.id, "b")
    sandbox.faults.append(Fault(kind="403", chat_id=user.id))
    with pytest.raises(Forbidden):
        await tg.send_message(user.id, "c")
    sandbox.faults.append(Fault(kind="timeout", deliver=True))
    with pytest.raises(NetworkError):
        await tg.send_message(user.id, "d")
    assert [m.text for m in sandbox.messages_to(user.id)] == ["d"]  # delivered, answer lost
    await tg.send_message(user.id, "e")
    assert len(sandbox.messages_to(user.id)) == 2


async def test_a_global_429_counts_calls_made_inside_its_window(sandbox: Sandbox, tg: Bot) -> None:
    user = sandbox.add_user()
    sandbox.faults.append(Fault(kind="429", retry_after=30, global_block=True))
    with pytest.raises(RetryAfter):
        await tg.send_message(user.id, "a")
    with pytest.raises(RetryAfter):
        await tg.send_message(user.id, "b")
    assert sandbox.calls_inside_block == 1


async def test_rate_limits_answer_429_beyond_the_per_chat_burst(sandbox: Sandbox, tg: Bot) -> None:
    frozen = [100.0]
    sandbox.limits.clock = lambda: frozen[0]
    sandbox.limits.enabled = True
    user = sandbox.add_user()
    for n in range(3):
        await tg.send_message(user.id, f"m{n}")
    with pytest.raises(RetryAfter):
        await tg.send_message(user.id, "too fast")
    frozen[0] += 1.0
    await tg.send_message(user.id, "after a second")


async def test_long_poll_returns_pushed_updates_and_confirms_by_offset(
    sandbox: Sandbox, tg: Bot
) -> None:
    user = sandbox.add_user()
    await sandbox.send_text(user, "hello")
    first = await tg.get_updates(timeout=1)
    assert [u.message.text for u in first if u.message] == ["hello"]
    assert first[0].message is not None and first[0].message.from_user is not None
    again = await tg.get_updates(offset=first[-1].update_id + 1, timeout=0)
    assert again == ()


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("plain", True),
        ("<b>bold</b> <i>it</i> <a href='x'>l</a>", True),
        ("&lt;tag&gt; &amp; &quot; &#39;", True),
        ("1 < 2", False),
        ("fish & chips", False),
        ("<b>unclosed", False),
        ("<div>no</div>", False),
        ("<b><i>crossed</b></i>", False),
    ],
)
def test_html_check_accepts_what_telegram_accepts(text: str, ok: bool) -> None:
    assert (html_error(text) is None) is ok
