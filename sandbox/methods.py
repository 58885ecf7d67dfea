"""The Bot API methods the sandbox serves, with Telegram's response shapes and refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sandbox.server import ApiError

if TYPE_CHECKING:
    from sandbox.server import Sandbox

Handler = Callable[["Sandbox", dict[str, Any]], Awaitable[Any]]


async def get_me(sb: Sandbox, params: dict[str, Any]) -> Any:
    return sb.state.bot_user()


async def get_updates(sb: Sandbox, params: dict[str, Any]) -> Any:
    """Long polling: confirm everything below `offset`, then wait up to `timeout` for more."""
    state = sb.state
    if state.webhook_url:
        raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
    offset = params.get("offset")
    if offset:
        confirmed = len(state.updates)
        state.updates = [u for u in state.updates if u["update_id"] >= offset]
        if len(state.updates) < confirmed:
            await sb.notify_waiters()  # a test waiting for the confirmation need not wait longer
    limit = int(params.get("limit") or 100)
    timeout = float(params.get("timeout") or 0)
    if not state.updates and timeout > 0:
        try:
            async with sb._changed:
                await asyncio.wait_for(
                    sb._changed.wait_for(lambda: bool(state.updates) or sb.closing), timeout
                )
        except TimeoutError:
            pass
    return state.updates[:limit]


def _chat_for_send(sb: Sandbox, params: dict[str, Any]) -> int:
    chat_id = params.get("chat_id")
    if not isinstance(chat_id, int):
        raise ApiError(400, "Bad Request: chat not found")
    if chat_id in sb.state.blocked_by:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    if chat_id not in sb.state.users and chat_id not in sb.group_chats:
        raise ApiError(400, "Bad Request: chat not found")
    return chat_id


async def send_message(sb: Sandbox, params: dict[str, Any]) -> Any:
    chat_id = _chat_for_send(sb, params)
    text = sb.check_text(params.get("text"), params.get("parse_mode"))
    message = sb.new_bot_message(chat_id, text, params.get("reply_markup"))
    return sb.state.message_dict(message)


def _message(sb: Sandbox, params: dict[str, Any]) -> Any:
    key = (params.get("chat_id"), params.get("message_id"))
    message = sb.state.messages.get(key)  # type: ignore[arg-type]
    if message is None:
        raise ApiError(400, "Bad Request: message to edit not found")
    return message


async def edit_message_text(sb: Sandbox, params: dict[str, Any]) -> Any:
    message = _message(sb, params)
    text = sb.check_text(params.get("text"), params.get("parse_mode"))
    markup = params.get("reply_markup")
    if text == message.html and markup == message.reply_markup:
        raise ApiError(400, "Bad Request: message is not modified: specified new message content "
                            "and reply markup are exactly the same")  # fmt: skip
    message.edits.append(message.html)
    message.html, message.reply_markup = text, markup
    return sb.state.message_dict(message)


async def edit_message_reply_markup(sb: Sandbox, params: dict[str, Any]) -> Any:
    message = _message(sb, params)
    markup = params.get("reply_markup")
    if markup == message.reply_markup:
        raise ApiError(400, "Bad Request: message is not modified")
    message.reply_markup = markup
    return sb.state.message_dict(message)


async def answer_callback_query(sb: Sandbox, params: dict[str, Any]) -> Any:
    query_id = str(params.get("callback_query_id"))
    if query_id not in sb.state.pressed:
        raise ApiError(400, "Bad Request: query is too old and response timeout expired")
    sb.state.callback_answers[query_id] = params
    return True


async def set_my_commands(sb: Sandbox, params: dict[str, Any]) -> Any:
    sb.state.commands[str(params.get("language_code") or "")] = params.get("commands") or []
    return True


async def get_my_commands(sb: Sandbox, params: dict[str, Any]) -> Any:
    return sb.state.commands.get(str(params.get("language_code") or ""), [])


async def set_webhook(sb: Sandbox, params: dict[str, Any]) -> Any:
    sb.state.webhook_url = str(params.get("url") or "")
    sb.state.webhook_secret = params.get("secret_token")
    for pending in list(sb.state.updates):  # Telegram delivers what is waiting
        sb._webhook_tasks.add(asyncio.create_task(sb.deliver_to_webhook(pending)))
    return True


async def delete_webhook(sb: Sandbox, params: dict[str, Any]) -> Any:
    sb.state.webhook_url, sb.state.webhook_secret = "", None
    if params.get("drop_pending_updates"):
        sb.state.updates.clear()
    return True


async def get_webhook_info(sb: Sandbox, params: dict[str, Any]) -> Any:
    return {"url": sb.state.webhook_url, "has_custom_certificate": False,
            "pending_update_count": len(sb.state.updates)}  # fmt: skip


async def accept(sb: Sandbox, params: dict[str, Any]) -> Any:
    return True


HANDLERS: dict[str, Handler] = {
    "getMe": get_me,
    "getUpdates": get_updates,
    "sendMessage": send_message,
    "editMessageText": edit_message_text,
    "editMessageReplyMarkup": edit_message_reply_markup,
    "answerCallbackQuery": answer_callback_query,
    "setMyCommands": set_my_commands,
    "getMyCommands": get_my_commands,
    "deleteMyCommands": accept,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "sendChatAction": accept,
    "deleteMessage": accept,
    "close": accept,
    "logOut": accept,
}
