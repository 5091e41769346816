"""/health: 200 while the main loop makes progress, 503 once it has made none for `[api]
stale_after`, and 200 again when it recovers. The console answers from its own thread, so it
can say so while the trading loop is stuck; a stuck loop is made here by blocking it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import LiveClock
from bot.config import load_settings_file
from bot.console.app import ConsoleContext, build_app
from bot.console.metrics import ConsoleMetrics
from bot.console.queries import ConsoleQueries
from bot.console.server import ConsoleServer
from bot.console.state import ConsoleState
from bot.daemon import DaemonOptions, ReplayFiles, run_daemon
from bot.store import Store
from tests.console.daemon import console_config, request
from tests.core.store_daemon import replay_files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_follows_the_heartbeat(tmp_path: Path) -> None:
    """The state alone, with a clock the test sets: fresh 200, stale 503, never beaten 503."""

    class SetClock(LiveClock):
        def __init__(self) -> None:
            super().__init__()
            self.at = datetime(2026, 1, 1, tzinfo=UTC)

        def now(self) -> datetime:
            return self.at

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    Store(url).close()
    clock = SetClock()
    state = ConsoleState(stale_after=30)
    context = ConsoleContext(
        state, ConsoleQueries(url, "paper"), ConsoleMetrics(), clock, {}, tmp_path / "KILL",
        tmp_path, None, False,
    )  # fmt: skip
    server = ConsoleServer(build_app(context), "127.0.0.1:0")
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}/health"
        assert request(base)[0] == 503  # no heartbeat yet
        state.beat(clock.at)
        clock.at += timedelta(seconds=29)
        status, body, _ = request(base)
        assert status == 200 and json.loads(body)["heartbeat_age_s"] == 29
        clock.at += timedelta(seconds=2)
        status, body, _ = request(base)
        assert status == 503 and json.loads(body)["status"] == "stale"
    finally:
        server.stop()


@pytest.mark.slow
def test_health_is_503_while_the_daemons_main_loop_is_stuck(tmp_path: Path) -> None:
    news, bars = replay_files(tmp_path, 120)
    port = free_port()
    config = console_config(tmp_path, listen=f"127.0.0.1:{port}")
    config.write_text(config.read_text().replace('stale_after = "3s"', 'stale_after = "1s"'))
    settings = load_settings_file(config)
    seen: list[int] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                seen.append(request(f"http://127.0.0.1:{port}/health", timeout=2)[0])
            time.sleep(0.1)

    async def main() -> None:
        stop = asyncio.Event()

        def ready(_: object) -> None:
            loop = asyncio.get_running_loop()
            loop.call_later(2.0, time.sleep, 3.0)  # the trading loop stuck for 3 s
            loop.call_later(7.0, stop.set)

        options = DaemonOptions(replay=ReplayFiles(news, bars, 1.0), live_feeds=False)
        await run_daemon(settings, options, stop=stop, ready=ready)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        asyncio.run(main())
    finally:
        done.set()
        poller.join(5)
    assert 200 in seen and 503 in seen, seen
    first_stale = seen.index(503)
    assert 200 in seen[:first_stale] and 200 in seen[first_stale:], seen  # ok, stuck, ok again
    assert seen.count(503) >= 5  # for most of the 3 s it was stuck, /health still answered
