"""The console's own thread and event loop, and what else runs on it (the Telegram bot).

Why a thread: the trading loop must never wait for a browser, and `/health` must still answer
(503) when that loop is stuck. Everything on this thread reads the snapshot and the read-only
database only; the main loop reaches it only through `call` (thread-safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from aiohttp import web

from bot.console.auth import split_listen
from bot.log import get_logger

log = get_logger("bot.console")


class Companion(Protocol):
    """Something that runs on the console's loop beside the web app (the Telegram bot)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ConsoleServer:
    def __init__(
        self, app: web.Application | None, listen: str, companions: Sequence[Companion] = ()
    ) -> None:
        self.app = app
        self.listen = listen
        self.companions = list(companions)
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start the thread; return once the port is bound (raises what binding raised)."""
        self._thread = threading.Thread(target=self._main, name="lorabot-console", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the console did not start in time")
        if self._error is not None:
            raise self._error

    def call(self, callback: Callable[[], object]) -> None:
        """Run `callback` on the console's loop (from any thread); dropped once stopped."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback)

    def stop(self, timeout: float = 10.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start(), or logged once running
            if not self._ready.is_set():
                self._error = error
                self._ready.set()
            else:
                log.error("console stopped", error=str(error) or repr(error))

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner: web.AppRunner | None = None
        started: list[Companion] = []
        try:
            if self.app is not None:
                runner = web.AppRunner(
                    self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0
                )
                await runner.setup()
                host, port = split_listen(self.listen)
                site = web.TCPSite(runner, host, port)
                await site.start()
                # the bound address: port 0 asks the system for a free one
                self.port = int(runner.addresses[0][1]) if runner.addresses else port
            for companion in self.companions:
                try:
                    await companion.start()
                except Exception as error:  # Telegram unreachable: the daemon trades on
                    log.error(
                        "console companion did not start",
                        companion=repr(companion),
                        error=str(error) or repr(error),
                    )
                    continue
                started.append(companion)
            self._ready.set()
            await self._stop.wait()
        finally:
            for companion in reversed(started):
                try:
                    await companion.stop()
                except Exception as error:
                    log.warning("console companion did not stop cleanly", error=str(error))
            if runner is not None:
                await runner.cleanup()
