"""The user side over HTTP, for a sandbox in another process (the demo, the chaos test)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.faults import Fault

if TYPE_CHECKING:
    from sandbox.server import Sandbox


def add_user_routes(app: web.Application, sb: Sandbox) -> None:
    """Mount /sandbox/... routes that play participants and coordinators."""

    def user_of(body: dict[str, Any]) -> Any:
        user = sb.state.users.get(int(body["user_id"]))
        if user is None:
            raise web.HTTPNotFound(text="no such sandbox user")
        return user

    async def add_user(request: web.Request) -> web.Response:
        body = await request.json()
        user = sb.add_user(first_name=body.get("first_name"),
                           language_code=body.get("language_code", "zh"))  # fmt: skip
        return web.json_response(user.as_dict())

    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(await sb.send_text(user_of(body), str(body["text"])))

    async def press(request: web.Request) -> web.Response:
        body = await request.json()
        message = sb.state.messages[(int(body["chat_id"]), int(body["message_id"]))]
        return web.json_response(await sb.press(user_of(body), message, str(body["data"])))

    async def messages(request: web.Request) -> web.Response:
        chat_id = int(request.query["chat_id"])
        return web.json_response([
            {"message_id": m.message_id, "text": m.text, "buttons": m.buttons}
            for m in sb.messages_to(chat_id)
        ])  # fmt: skip

    async def add_fault(request: web.Request) -> web.Response:
        sb.faults.append(Fault(**(await request.json())))
        return web.json_response({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({
            "sent": len(sb.state.sent), "pending_updates": len(sb.state.updates),
            "calls": len(sb.state.calls), "calls_inside_block": sb.calls_inside_block,
        })  # fmt: skip

    app.router.add_post("/sandbox/users", add_user)
    app.router.add_post("/sandbox/send", send)
    app.router.add_post("/sandbox/press", press)
    app.router.add_get("/sandbox/messages", messages)
    app.router.add_post("/sandbox/faults", add_fault)
    app.router.add_get("/sandbox/stats", stats)
