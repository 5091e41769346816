"""`TelegramCompanion`: python-telegram-bot on the console's loop.

Commands are registered with a chat filter, so an update from any chat but `[telegram]
chat_id` reaches no handler and gets no answer (it is only logged). `/kill` (and `/kill off`)
write the kill-switch file through the console, like `lorabot kill`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from adapters.telegram.messages import (
    daily_summary_text,
    decisions_text,
    fill_text,
    positions_text,
    profit_text,
    seconds_until,
    status_text,
)
from bot.config import TelegramConfig
from bot.console.service import Console
from bot.errors import UserError
from bot.events import Fill
from bot.log import get_logger

TOKEN_ENV = "LORABOT_TELEGRAM_TOKEN"
log = get_logger("adapters.telegram")
Reply = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class TelegramCompanion:
    def __init__(self, config: TelegramConfig, token: str, console: Console) -> None:
        self.config = config
        self._token = token
        self.console = console
        self.app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._daily: asyncio.Task[None] | None = None
        self.sent = 0
        self._pending: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, config: TelegramConfig, console: Console) -> TelegramCompanion:
        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise UserError(f"[telegram] enabled = true needs {TOKEN_ENV} in the environment")
        return cls(config, token, console)

    def __repr__(self) -> str:  # never the token
        return f"TelegramCompanion(chat_id={self.config.chat_id})"

    def attach(self) -> None:
        """Run on the console's loop, hear of fills and alerts."""
        self.console.add_companion(self)
        self.console.on_fill(self._on_fill)
        self.console.alerts.append(self._on_alert)

    # -- lifecycle (the console's loop) ------------------------------------------------------

    async def start(self) -> None:
        base = self.config.api_url.rstrip("/")
        app = (
            Application.builder()
            .token(self._token)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .build()
        )
        chat = filters.Chat(chat_id=self.config.chat_id)
        commands: dict[str, Reply] = {
            "status": self._status,
            "positions": self._positions,
            "profit": self._profit,
            "decisions": self._decisions,
            "kill": self._kill,
        }
        for name, handler in commands.items():
            app.add_handler(CommandHandler(name, handler, filters=chat))
        app.add_handler(MessageHandler(~chat, self._stranger))
        await app.initialize()
        await app.start()
        if app.updater is not None:
            await app.updater.start_polling(poll_interval=0.5, timeout=10)
        self.app = app
        self._daily = asyncio.create_task(self._daily_summaries(), name="telegram:daily")
        log.info("telegram bot started", chat_id=self.config.chat_id)

    async def stop(self) -> None:
        if self._pending:  # a last notice (the fatal error that stops the daemon) goes out first
            await asyncio.wait(set(self._pending), timeout=5)
        if self._daily is not None:
            self._daily.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._daily
        app = self.app
        if app is None:
            return
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        await app.stop()
        await app.shutdown()

    async def send(self, text: str) -> None:
        if self.app is None:
            return
        try:
            await self.app.bot.send_message(chat_id=self.config.chat_id, text=text)
            self.sent += 1
        except Exception as error:  # a notification that fails must not stop anything
            log.warning("telegram message not sent", error=str(error))

    # -- notifications (called on the console's loop) ---------------------------------------

    def _on_fill(self, fill: Fill) -> None:
        self._later(fill_text(fill))

    def _on_alert(self, text: str) -> None:
        self._later(text)

    def _later(self, text: str) -> None:
        task = asyncio.get_running_loop().create_task(self.send(text))
        self._pending.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._pending.discard)

    async def _daily_summaries(self) -> None:
        clock = self.console.parts.clock
        while True:
            await asyncio.sleep(seconds_until(self.config.daily_summary_at, clock.now()))
            await self.send(daily_summary_text(self.console.snapshot(), clock.now()))
            await asyncio.sleep(1)

    # -- commands ---------------------------------------------------------------------------

    async def _answer(self, update: Update, text: str) -> None:
        if update.effective_chat is not None:
            await update.get_bot().send_message(chat_id=update.effective_chat.id, text=text)
            self.sent += 1

    async def _status(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        await self._answer(update, status_text(self.console.snapshot()))

    async def _positions(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        await self._answer(update, positions_text(self.console.snapshot()))

    async def _profit(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        await self._answer(update, profit_text(self.console.snapshot()))

    async def _decisions(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        await self._answer(update, decisions_text(self.console.decisions(10)))

    async def _kill(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = context.args or []
        off = bool(args) and args[0].lower() == "off"
        self.console.set_kill(not off, "telegram")
        await self._answer(
            update,
            "kill switch off: trading resumes"
            if off
            else "kill switch ON: the daemon flattens and halts (/kill off to resume)",
        )

    async def _stranger(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        log.warning(
            "telegram: ignored a message from another chat", chat_id=chat.id if chat else None
        )
