"""A paper daemon started without network leaves no aiohttp session unclosed.

"Without network" is every endpoint refusing connections: the feed and Bybit's REST and websocket
URLs all point at a closed port on 127.0.0.1. asyncio reports a session that was never closed as
a plain-text `ERROR:asyncio:Unclosed client session` line in the JSON log, on every start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from newsfeed_server import news_config

from adapters.news.poller import NewsPoller
from bot.config import FeedConfig
from bot.store import Store
from bot.symbols import SymbolTable

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_poller_closes_its_session_when_it_stops_or_after_one_look(
    store: Store, symbols: SymbolTable
) -> None:
    """The news side of it: the poller's one aiohttp session ends with `run` and `fetch_once`,
    whether the feeds answered or not."""
    from newsfeed_server import Clock

    dead = f"http://127.0.0.1:{_closed_port()}/rss"
    config = news_config(feeds=(FeedConfig(url=dead),))
    poller = NewsPoller(config, store, symbols, clock=Clock())
    report = await poller.fetch_once()
    assert report.failures and report.failures[0].error.startswith("cannot connect")
    assert poller.fetcher._session is None
    task = asyncio.create_task(poller.run(lambda item: asyncio.sleep(0)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while poller.fetcher._session is None or store.feed_state(dead)["error_count"] < 2:
        assert loop.time() < deadline, "the feed was not polled"
        await asyncio.sleep(0.01)
    session = poller.fetcher._session
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert session.closed and poller.fetcher._session is None


@pytest.mark.slow
def test_a_daemon_without_network_leaves_no_client_session_open(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    config = tmp_path / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[store]",
                f'data_dir = "{tmp_path / "data"}"',
                f'cache_dir = "{tmp_path / "cache"}"',
                "[model]",
                'backend = "lexicon"',
                "[bybit]",
                f'rest_url = "{dead}"',
                f'ws_public_url = "{dead.replace("http", "ws")}"',
                'rest_backoff = "50ms"',
                'rest_backoff_max = "200ms"',
                "[news]",
                'backoff_initial = "1s"',
                "[[news.feeds]]",
                f'url = "{dead}/rss"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    stderr = tmp_path / "daemon.log"
    with stderr.open("w") as sink:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--mode", "paper", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=sink,
            stderr=sink,
            text=True,
        )
        try:
            # start-up, the failed instrument query, a failed poll: however long a loaded
            # machine takes, then a little more for the reconnects
            deadline = time.monotonic() + 90
            while "news feed failed" not in stderr.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)
            daemon.send_signal(signal.SIGINT)
            daemon.wait(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    log = stderr.read_text()
    assert "news polling started" in log, log[-2000:]
    assert "news feed failed" in log, log[-2000:]  # it did try the feed, offline
    assert "daemon stopped" in log, log[-2000:]
    assert "Unclosed client session" not in log, log[-2000:]
