"""The sandbox's HTTP server: Telegram's Bot API on one side, a user-side API on the other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import ClientError, ClientSession, web

from sandbox.faults import Fault, Limits, Storm
from sandbox.html_check import html_error
from sandbox.state import ApiCall, BotMessage, SandboxState, SandboxUser

__all__ = ["Fault", "Sandbox", "SandboxUser", "Storm"]

JSON_FIELDS = frozenset(
    {"reply_markup", "allowed_updates", "commands", "scope", "entities", "link_preview_options",
     "reply_parameters"}
)  # fmt: skip
INT_FIELDS = frozenset({"chat_id", "message_id", "offset", "limit", "user_id", "cache_time"})
FLOAT_FIELDS = frozenset({"timeout"})
BOOL_FIELDS = frozenset({"show_alert", "disable_notification", "drop_pending_updates"})
TEXT_LIMIT = 4096


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


def _decode(raw: dict[str, Any]) -> dict[str, Any]:
    """Undo python-telegram-bot's form encoding: JSON for objects, strings for the rest."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            if key in JSON_FIELDS:
                value = json.loads(value)
            elif key in INT_FIELDS:
                value = int(value)
            elif key in FLOAT_FIELDS:
                value = float(value)
            elif key in BOOL_FIELDS:
                value = value.lower() == "true"
        params[key] = value
    return params


class Sandbox:
    """A Telegram stand-in on 127.0.0.1 that the real python-telegram-bot talks to over HTTP."""

    def __init__(
        self,
        *,
        token: str = "7000000001:SANDBOX-token-not-a-real-one-0000000000",
        bot_username: str = "followup_sandbox_bot",
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.state = SandboxState(bot_username=bot_username)
        self.faults: list[Fault] = []
        self.storm: Storm | None = None  # when set, it decides the faults instead of `faults`
        self.limits = Limits(clock=clock)
        self.rng = random.Random(seed)
        self.clock = clock
        self.blocked_until = 0.0
        self.calls_inside_block = 0
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.group_chats: set[int] = set()
        self.closing = False
        self.user_texts: list[str] = []
        self.webhook_statuses: list[int] = []
        self.webhook_gave_up: list[dict[str, Any]] = []
        self._webhook_order = asyncio.Lock()
        self._webhook_tasks: set[asyncio.Task[None]] = set()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._bot_api)
        from sandbox.user_api import add_user_routes  # the user side is optional wiring

        add_user_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        # Release long polls first; aiohttp's shutdown would otherwise wait for them to time out.
        self.closing = True
        async with self._changed:
            self._changed.notify_all()
        for task in self._webhook_tasks:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        """The value for FOLLOWUP_TELEGRAM_API_URL."""
        return f"http://127.0.0.1:{self.port}/bot"

    # ---- the Bot API side ------------------------------------------------------------------

    async def _bot_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if request.content_type == "application/json":
            raw = await request.json()
        else:
            raw = dict(await request.post())
        params = _decode(raw)
        chat_id = params.get("chat_id") if isinstance(params.get("chat_id"), int) else None
        now = self.clock()
        try:
            fault = await self._fault_for(method, chat_id, now)
            if fault is not None and fault.kind == "timeout":
                if fault.deliver:
                    await self._dispatch(method, params)
                why = (
                    "dropped connection after delivery" if fault.deliver else "dropped connection"
                )
                self._record(method, params, now, 0, why)
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=504)  # never reaches the client: the line is down
            result = await self._dispatch(method, params)
        except ApiError as err:
            self._record(method, params, now, err.code, err.description)
            body: dict[str, Any] = {
                "ok": False,
                "error_code": err.code,
                "description": err.description,
            }
            if err.retry_after is not None:
                body["parameters"] = {"retry_after": err.retry_after}
            return web.json_response(body, status=err.code)
        self._record(method, params, now, 200)
        return web.json_response({"ok": True, "result": result})

    def _record(
        self, method: str, params: dict[str, Any], at: float, status: int, why: str = ""
    ) -> None:
        self.state.call_counts[method] += 1
        if method != "getUpdates" or status != 200:
            self.state.calls.append(ApiCall(method, params, at, status, why))

    async def _fault_for(self, method: str, chat_id: int | None, now: float) -> Fault | None:
        if method != "getUpdates" and now < self.blocked_until:
            self.calls_inside_block += 1
            raise ApiError(
                429, "Too Many Requests: retry after", int(self.blocked_until - now) + 1
            )
        fault = self._pick_fault(method, chat_id)
        if fault is not None:
            await self.notify_waiters()  # a test may wait for the call to be under way
            if fault.delay:  # an injected slow answer, on the server side; a stop ends it
                with contextlib.suppress(TimeoutError):
                    async with self._changed:
                        await asyncio.wait_for(
                            self._changed.wait_for(lambda: self.closing), fault.delay
                        )
            if fault.kind == "429":
                if fault.global_block:
                    self.blocked_until = max(self.blocked_until, now + fault.retry_after)
                text = f"Too Many Requests: retry after {fault.retry_after}"
                raise ApiError(429, text, fault.retry_after)
            if fault.kind == "403":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if fault.kind in ("500", "502"):
                raise ApiError(int(fault.kind), "Internal Server Error")
            return fault
        wait = self.limits.check(method, chat_id)
        if wait:
            raise ApiError(429, f"Too Many Requests: retry after {wait}", wait)
        return None

    def _pick_fault(self, method: str, chat_id: int | None) -> Fault | None:
        if self.storm is not None and method != "getUpdates":
            return self.storm.draw(self.rng)
        for fault in self.faults:
            if method == "getUpdates" and fault.method != "getUpdates":
                continue
            if fault.matches(method, chat_id, self.rng):
                fault.fired += 1
                return fault
        return None

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        from sandbox import methods  # keeps this module to the HTTP plumbing

        handler = methods.HANDLERS.get(method)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        result = await handler(self, params)
        async with self._changed:
            self._changed.notify_all()
        return result

    # ---- the user side (in-process) --------------------------------------------------------

    def add_user(
        self,
        *,
        first_name: str | None = None,
        language_code: str | None = "zh",
        username: str | None = None,
        last_name: str | None = None,
    ) -> SandboxUser:
        """A new person; by default with distinctive names, so a leak into a log is findable."""
        uid = self.state.next_user_id()
        user = SandboxUser(
            uid,
            first_name or f"Sbxfirst{uid}",
            last_name or f"Sbxlast{uid}",
            username or f"sbxuser{uid}",
            language_code,
        )
        self.state.users[user.id] = user
        return user

    async def push_update(self, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self.state.next_update_id(), **payload}
        self.state.updates.append(update)
        if self.state.webhook_url:
            self._webhook_tasks.add(asyncio.create_task(self.deliver_to_webhook(update)))
        async with self._changed:
            self._changed.notify_all()
        return update

    async def notify_waiters(self) -> None:
        """Wake every `wait_until` to check again, e.g. after a change the sandbox cannot see."""
        async with self._changed:
            self._changed.notify_all()

    async def deliver_to_webhook(self, update: dict[str, Any]) -> None:
        """Deliver like Telegram: POST with the secret header, retrying until a 200."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.state.webhook_secret or ""}
        async with self._webhook_order:  # one at a time keeps a chat's updates in order
            for attempt in range(20):
                try:
                    async with (
                        ClientSession() as session,
                        session.post(
                            self.state.webhook_url, json=update, headers=headers
                        ) as response,
                    ):
                        self.webhook_statuses.append(response.status)
                        if response.status == 200:
                            self.state.updates.remove(update)
                            await self.notify_waiters()
                            return
                except ClientError:
                    self.webhook_statuses.append(0)
                await asyncio.sleep(min(0.2, 0.005 * 2**attempt))  # Telegram's retry back-off
            self.webhook_gave_up.append(update)

    async def send_text(self, user: SandboxUser, text: str, **extra: Any) -> dict[str, Any]:
        self.user_texts.append(text)
        message: dict[str, Any] = {
            "message_id": self.state.next_message_id(),
            "date": int(time.time()),
            "chat": user.private_chat(),
            "from": user.as_dict(),
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split(maxsplit=1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        message.update(extra)
        return await self.push_update({"message": message})

    async def send_command(self, user: SandboxUser, command: str, *args: str) -> dict[str, Any]:
        return await self.send_text(user, " ".join([f"/{command}", *args]))

    async def send_other(self, user: SandboxUser, kind: str, content: Any) -> dict[str, Any]:
        """Send a non-text message: a sticker, photo, voice note and so on."""
        return await self.push_update({"message": {
            "message_id": self.state.next_message_id(), "date": int(time.time()),
            "chat": user.private_chat(), "from": user.as_dict(), kind: content,
        }})  # fmt: skip

    async def press(self, user: SandboxUser, message: BotMessage, data: str) -> dict[str, Any]:
        """Press an inline button under `message` (any data: forged presses are a test too)."""
        callback_id = self.state.next_callback_id()
        callback = {
            "id": callback_id,
            "from": user.as_dict(),
            "message": self.state.message_dict(message),
            "chat_instance": str(message.chat_id),
            "data": data,
        }
        self.state.pressed.append(callback_id)
        return await self.push_update({"callback_query": callback})

    def block_bot(self, user: SandboxUser) -> None:
        self.state.blocked_by.add(user.id)

    def unblock_bot(self, user: SandboxUser) -> None:
        self.state.blocked_by.discard(user.id)

    def messages_to(self, chat_id: int) -> list[BotMessage]:
        return list(self.state.by_chat.get(chat_id, ()))

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait, bounded, until the bot has done something that makes `predicate` true."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def next_message(self, chat_id: int, *, after: int, timeout: float = 10.0) -> BotMessage:
        """The first message sent to `chat_id` beyond the first `after` ones."""
        await self.wait_until(lambda: len(self.messages_to(chat_id)) > after, timeout)
        return self.messages_to(chat_id)[after]

    def unanswered_callbacks(self) -> list[str]:
        """Ids of button presses the bot never answered (every press must be answered)."""
        return sorted(set(self.state.pressed) - set(self.state.callback_answers))

    def sent_count(self) -> int:
        return len(self.state.sent)

    def new_bot_message(
        self, chat_id: int, html_text: str, markup: dict[str, Any] | None
    ) -> BotMessage:
        message = BotMessage(
            chat_id=chat_id,
            message_id=self.state.next_message_id(),
            html=html_text,
            reply_markup=markup,
            date=int(time.time()),
            sent_at=self.clock(),
        )
        self.state.messages[(chat_id, message.message_id)] = message
        self.state.sent.append(message)
        self.state.by_chat.setdefault(chat_id, []).append(message)
        return message

    @staticmethod
    def check_text(text: Any, parse_mode: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        if parse_mode == "HTML":
            problem = html_error(text)
            if problem:
                raise ApiError(400, f"Bad Request: can't parse entities: {problem}")
        return text
