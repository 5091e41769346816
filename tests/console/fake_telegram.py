"""A fake Telegram Bot API on 127.0.0.1 (aiohttp, its own thread): enough of getMe,
deleteWebhook, getUpdates and sendMessage for python-telegram-bot's polling bot, recording
every call. The real service is never reached."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import web


class FakeBotApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.wrong_token = 0
        self._next_update = 1
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self.port = 0
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeBotApi:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def command(self, chat_id: int, text: str) -> None:
        """Queue a message as if `chat_id` had sent it."""
        with self._lock:
            update_id = self._next_update
            self._next_update += 1
            self.updates.append(
                {
                    "update_id": update_id,
                    "message": {
                        "message_id": update_id,
                        "date": int(time.time()),
                        "chat": {"id": chat_id, "type": "private"},
                        "from": {"id": chat_id, "is_bot": False, "first_name": "someone"},
                        "text": text,
                        "entities": [
                            {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
                        ],
                    },
                }
            )

    def messages_to(self, chat_id: int) -> list[str]:
        with self._lock:
            return [m["text"] for m in self.sent if int(m["chat_id"]) == chat_id]

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        self.calls.append(method)
        if token != self.token:
            self.wrong_token += 1
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        if method == "getMe":
            result: Any = {
                "id": 1,
                "is_bot": True,
                "first_name": "lorabot",
                "username": "lorabot_test_bot",
            }
        elif method in ("deleteWebhook", "setMyCommands"):
            result = True
        elif method == "getUpdates":
            offset = int(params.get("offset") or 0)
            with self._lock:
                result = [u for u in self.updates if u["update_id"] >= offset]
            if not result:
                await asyncio.sleep(0.2)
        elif method == "sendMessage":
            with self._lock:
                self.sent.append({"chat_id": params["chat_id"], "text": params["text"]})
            result = {
                "message_id": 1000 + len(self.sent),
                "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "text": params["text"],
            }
        else:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": method}, status=404
            )
        return web.Response(
            text=json.dumps({"ok": True, "result": result}), content_type="application/json"
        )

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
