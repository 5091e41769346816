"""What the README's paper daemon says on stderr (issue 13.2, 13.6): which feeds it polls, what
came of them, and, without network, one line per failing feed rather than one per retry; every
line of it JSON.

The shipped default feeds (their names, in their order) are served by a local RSS server standing
in for the outlets, or point at closed ports on 127.0.0.1 for "no network"; Bybit's endpoints are
closed ports too, so nothing here can reach the internet.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from newsfeed_server import rss, threaded_server

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_NAMES = [feed.name for feed in Settings().news.feeds if feed.enabled]
assert DEFAULT_NAMES, "the built-in defaults should poll public feeds (issue 13.2)"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(tmp_path: Path, feeds: dict[str, str]) -> Path:
    dead = f"http://127.0.0.1:{_closed_port()}"
    lines = [
        "[store]",
        f'url = "sqlite:///{tmp_path / "store.sqlite"}"',
        f'cache_dir = "{tmp_path / "cache"}"',
        'commit_interval = "50ms"',
        "[model]",
        'backend = "lexicon"',
        'max_wait = "5ms"',
        "[bybit]",
        f'rest_url = "{dead}"',
        f'ws_public_url = "{dead.replace("http", "ws")}"',
        'rest_backoff = "50ms"',
        'rest_backoff_max = "200ms"',
        "[log]",
        'format = "json"',
        "[news]",
        'poll_interval = "300ms"',
        'backoff_initial = "300ms"',
        'backoff_max = "600ms"',
        'timeout = "2s"',
        "jitter = 0",
    ]
    for name, url in feeds.items():
        lines += ["[[news.feeds]]", f'url = "{url}"', f'name = "{name}"']
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run_daemon(
    tmp_path: Path, config: Path, until: Callable[[], bool], timeout: float = 60
) -> tuple[list[dict[str, Any]], str]:
    """`python -m bot run --mode paper` (in asyncio's debug mode, whose reports are stdlib log
    lines) until `until()` holds, then SIGINT; every stderr line parsed."""
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w", encoding="utf-8") as err_file:
        daemon = subprocess.Popen(
            [
                *(sys.executable, "-X", "dev", "-m", "bot", "run", "--mode", "paper"),
                "--config",
                str(config),
            ],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")},
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
        try:
            deadline = time.monotonic() + timeout
            while not until():
                assert daemon.poll() is None, err_path.read_text(encoding="utf-8")[-3000:]
                assert time.monotonic() < deadline, err_path.read_text(encoding="utf-8")[-3000:]
                time.sleep(0.1)
            daemon.send_signal(signal.SIGINT)
            daemon.wait(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    err = err_path.read_text(encoding="utf-8")
    events = []
    for number, line in enumerate(err.splitlines(), start=1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"stderr line {number} is not JSON: {line!r}\n{err[-3000:]}")
    return events, err


def _rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the daemon's store, or none while it is not made or not migrated yet."""
    store = tmp_path / "store.sqlite"
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def _started(events: list[dict[str, Any]]) -> dict[str, Any]:
    started = [event for event in events if event["event"] == "news polling started"]
    assert len(started) == 1, events
    return started[0]


@pytest.mark.slow
def test_the_paper_daemon_says_which_feeds_it_polls_and_what_they_gave(tmp_path: Path) -> None:
    """Each outlet has one item from before start-up (recorded, flagged stale) and, once the
    daemon has polled it, one fresh item: the log names every feed and each poll's news."""
    items: dict[str, list[dict[str, Any]]] = {
        name: [
            {
                "title": f"Bitcoin surges on {name} inflows",
                "guid": f"{name}-1",
                "published": datetime.now(UTC) - timedelta(minutes=1),
            }
        ]
        for name in DEFAULT_NAMES
    }
    with threaded_server() as (server, _loop):
        feeds = {
            name: server.feed(f"/{name}", lambda name=name: rss(list(reversed(items[name]))))
            for name in DEFAULT_NAMES
        }

        def fresh_news_stored() -> bool:
            """Once every feed was polled, each gets a fresh item; done when all are stored."""
            if all(len(feed) == 1 for feed in items.values()):
                if all(server.hits(f"/{name}") for name in DEFAULT_NAMES):
                    for name in DEFAULT_NAMES:
                        items[name].append(
                            {
                                "title": f"Ether tumbles as {name} reports outflows",
                                "guid": f"{name}-2",
                                "published": datetime.now(UTC),
                            }
                        )
                return False
            return len(_rows(tmp_path, "SELECT title FROM news_items")) == 2 * len(DEFAULT_NAMES)

        events, err = _run_daemon(tmp_path, _config(tmp_path, feeds), fresh_news_stored)
    started = _started(events)
    assert started["feeds"] == len(DEFAULT_NAMES)
    assert started["polling"] == [f"{name} {url}" for name, url in feeds.items()]
    assert not [event for event in events if event["event"] == "news feed failed"], err[-2000:]
    polled = [event for event in events if event["event"] == "news feed polled"]
    assert sorted((event["source"], event["new"], event["stale"]) for event in polled) == sorted(
        [(name, 1, 1) for name in DEFAULT_NAMES] + [(name, 1, 0) for name in DEFAULT_NAMES]
    ), err[-3000:]  # one line per poll that brought news, none for the polls that found nothing
    assert any(event["event"] == "daemon stopped" for event in events)


@pytest.mark.slow
def test_without_network_each_feed_fails_once_in_the_log_and_is_retried(tmp_path: Path) -> None:
    feeds = {name: f"http://127.0.0.1:{_closed_port()}/{name}" for name in DEFAULT_NAMES}

    def retried() -> bool:  # it keeps retrying: three tries of each feed at least
        counts = dict(_rows(tmp_path, "SELECT url, error_count FROM feed_state"))
        return all((counts.get(url) or 0) >= 3 for url in feeds.values())

    events, err = _run_daemon(tmp_path, _config(tmp_path, feeds), retried)
    assert _started(events)["polling"] == [f"{name} {url}" for name, url in feeds.items()]
    failed = Counter(event["url"] for event in events if event["event"] == "news feed failed")
    assert failed == Counter(feeds.values()), err[-3000:]  # once per feed: not once per retry
    for event in events:
        if event["event"] == "news feed failed":
            assert event["reason"].startswith("cannot connect") and "retrying" in event["retrying"]
    assert any(event["event"] == "daemon stopped" for event in events)
