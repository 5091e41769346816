"""The paper daemon with live feeds: the poller as its news source, through the real engine.

Feed items reach the model once each, stale ones are labelled but flagged (never traded), the
raw entry the poller kept survives the engine storing the same item, and a restarted daemon
publishes nothing twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from newsfeed_server import FeedServer, rss

from bot.config import Settings
from bot.daemon import DaemonOptions, run_daemon


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings().with_overrides(
        store={
            "url": f"sqlite:///{tmp_path / 'store.sqlite'}",
            "commit_interval": "50ms",
            "cache_dir": str(tmp_path / "cache"),
        },
        model={"backend": "lexicon", "max_wait": "5ms"},
        news={
            "feeds": [{"url": url, "name": "wire"}],
            "poll_interval": "100ms",
            "timeout": "1s",
            "backoff_initial": "100ms",
            "backoff_max": "1s",
            "jitter": 0,
        },
        engine={"snapshot_interval": "1h", "heartbeat_interval": "1h"},
        bybit={"announcements": {"enabled": False}},  # read from Bybit itself: not in a test
    )


async def _daemon_until(settings: Settings, done: Callable[[], bool], timeout: float = 20) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_daemon(settings, DaemonOptions(mode="paper"), stop=stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not done():
            assert not task.done(), task.exception()
            assert loop.time() < deadline, "the daemon did not get there in time"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


async def test_daemon_polls_feeds_and_labels_each_item_once(
    server: FeedServer, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    feed: list[dict[str, Any]] = [
        {
            "title": "Bitcoin plunges after exchange hack",
            "guid": "d1",
            "published": now - timedelta(hours=1),
        },
    ]
    url = server.feed("/rss", lambda: rss(list(reversed(feed))))
    settings = _settings(tmp_path, url)
    db = tmp_path / "store.sqlite"
    signals = "select news_id, symbol_key, label, stale from signals order by news_id"

    def first_signal() -> bool:
        if len(_query(db, signals)) == 1 and len(feed) == 1:
            feed.append(
                {
                    "title": "Bitcoin surges to a record high",
                    "guid": "d2",
                    "published": datetime.now(UTC),
                }
            )
        return len(_query(db, signals)) == 2

    await _daemon_until(settings, first_signal)
    assert _query(db, signals) == [
        ("127.0.0.1#d1", "BTCUSDT", "bearish", 1),  # backlog at start-up: labelled, flagged stale
        ("127.0.0.1#d2", "BTCUSDT", "bullish", 0),
    ]
    news = _query(
        db, "select id, source, stale, raw is not null, signal_status from news_items order by id"
    )
    assert news == [("127.0.0.1#d1", "wire", 1, 1, "done"), ("127.0.0.1#d2", "wire", 0, 1, "done")]

    # Restart: a third item appeared while it was down; the first two are not published again.
    feed.append(
        {"title": "Ether rallies on ETF news", "guid": "d3", "published": datetime.now(UTC)}
    )
    await _daemon_until(settings, lambda: len(_query(db, signals)) >= 3)
    rows = _query(db, signals)
    assert [row[0] for row in rows] == ["127.0.0.1#d1", "127.0.0.1#d2", "127.0.0.1#d3"]
    assert rows[2][1:] == ("ETHUSDT", "bullish", 1)  # appeared while down: stale
