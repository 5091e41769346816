"""Across a restart no item is published twice and none is missed.

Missed means never recorded: items that appeared while the poller was down are recorded and
published on restart, flagged stale, because nobody could have traded on them in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from newsfeed_server import START, Clock, FeedServer, rss

from adapters.files import read_news
from adapters.news.poller import NewsPoller
from adapters.news.recorder import NewsRecorder
from bot.events import NewsItem
from bot.store import Store

MakePoller = Callable[..., NewsPoller]


class Crash(BaseException):
    """Stands for the process dying: not an `Exception`, so nothing on the way catches it."""


class Run:
    """One life of the daemon's news source: a poller running until stopped."""

    def __init__(self, poller: NewsPoller) -> None:
        self.poller = poller
        self.published: list[NewsItem] = []
        self.task: asyncio.Task[None] | None = None

    async def publish(self, item: object) -> None:
        assert isinstance(item, NewsItem)
        self.published.append(item)

    async def __aenter__(self) -> Run:
        self.task = asyncio.create_task(self.poller.run(self.publish))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.published) < count:
            assert loop.time() < deadline, f"{len(self.published)} of {count} items published"
            await asyncio.sleep(0.01)


async def test_restart_publishes_nothing_twice_and_misses_nothing(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    feed: list[dict[str, Any]] = []

    def add(guid: str, published: Any) -> None:
        feed.insert(0, {"title": f"Bitcoin story {guid}", "guid": guid, "published": published})

    url = server.feed("/rss", lambda: rss(feed), etag="")
    clock = Clock(START + timedelta(minutes=3))
    add("a", START + timedelta(minutes=1))
    add("b", START + timedelta(minutes=2))

    # First life: both items are fresh.
    async with Run(make_poller(url, clock=clock, started_at=START)) as first:
        await first.wait_for(2)
        await asyncio.sleep(0.15)  # more polls: nothing twice
    assert [(i.id, i.stale) for i in first.published] == [
        ("127.0.0.1#a", False),
        ("127.0.0.1#b", False),
    ]

    # Down for a while; two items appear meanwhile.
    add("c", START + timedelta(minutes=10))
    add("d", START + timedelta(minutes=12))
    restart = START + timedelta(minutes=20)
    clock.value = restart

    # Second life, new poller on the same store: c and d recorded and published stale, a and b
    # not again; an item that appears after the restart is fresh.
    async with Run(make_poller(url, clock=clock, started_at=restart)) as second:
        await second.wait_for(2)
        clock.value = restart + timedelta(minutes=2)
        add("e", restart + timedelta(minutes=1))
        await second.wait_for(3)
        await asyncio.sleep(0.15)
    assert [(i.id, i.stale) for i in second.published] == [
        ("127.0.0.1#c", True),
        ("127.0.0.1#d", True),
        ("127.0.0.1#e", False),
    ]
    everything = [item.id for item in first.published + second.published]
    assert len(everything) == len(set(everything)) == 5
    assert store.news_ids(everything) == set(everything)


async def test_restart_with_a_crash_between_file_and_store(
    server: FeedServer, make_poller: MakePoller, store: Store, tmp_path: Path
) -> None:
    """The recorder is written before the store commit: a crash in between re-fetches, and the
    file still holds each item once."""
    url = server.feed(
        "/rss",
        rss(
            [
                {"title": "Ether climbs", "guid": "x1", "published": START + timedelta(minutes=1)},
                {"title": "Bitcoin dips", "guid": "x2", "published": START + timedelta(minutes=2)},
            ]
        ),
    )
    path = tmp_path / "news.jsonl"
    recorder = NewsRecorder(path).open()

    def crash_after_writing(items: Any) -> None:
        recorder.append_many(items)
        raise Crash  # the process dies here: after the file, before the store

    crashing = make_poller(url, sink=crash_after_writing)
    with pytest.raises(Crash):
        await crashing.poll(url)
    recorder.close()
    assert store.count("news") == 0 and len(path.read_text().splitlines()) == 2

    recorder = NewsRecorder(path).open()
    restarted = make_poller(url, sink=recorder.append_many)
    result = await restarted.poll(url)
    recorder.close()
    assert len(result.items) == 2 and store.count("news") == 2
    assert [item.id for item in read_news(path)] == ["127.0.0.1#x1", "127.0.0.1#x2"]


async def test_recorded_file_replays_and_survives_a_torn_last_line(
    server: FeedServer, make_poller: MakePoller, tmp_path: Path
) -> None:
    items = [
        {"title": "Ether climbs", "guid": "y1", "published": START + timedelta(minutes=1)},
    ]
    url = server.feed("/rss", lambda: rss(list(reversed(items))))
    path = tmp_path / "news.jsonl"
    with NewsRecorder(path) as recorder:
        await make_poller(url, sink=recorder.append_many).poll(url)
    with path.open("ab") as handle:  # a crash cut the next line short
        handle.write(b'{"id":"127.0.0.1#y2","source":"127.0.0.1","title":"Bitc')
        handle.flush()
        os.fsync(handle.fileno())
    items.append(
        {"title": "Bitcoin slides", "guid": "y2", "published": START + timedelta(minutes=2)}
    )
    with NewsRecorder(path) as recorder:
        await make_poller(url, sink=recorder.append_many).poll(url)
    replayed = read_news(path)
    assert [(item.id, item.title) for item in replayed] == [
        ("127.0.0.1#y1", "Ether climbs"),
        ("127.0.0.1#y2", "Bitcoin slides"),
    ]


async def test_items_an_earlier_run_recorded_are_counted_once_not_dropped_silently(
    server: FeedServer, make_poller: MakePoller
) -> None:
    feed = [
        {"title": f"Ether story {n}", "guid": f"x{n}", "published": START + timedelta(minutes=n)}
        for n in (3, 2, 1)
    ]
    url = server.feed("/rss", lambda: rss(feed), etag="")
    first = await make_poller(url).poll(url)
    assert (len(first.items), first.earlier) == (3, 0)

    feed.insert(0, {"title": "Ether story 4", "guid": "x4", "published": START})
    restarted = make_poller(url)
    with structlog.testing.capture_logs() as logs:
        again = await restarted.poll(url)
        feed.insert(0, {"title": "Ether story 5", "guid": "x5", "published": START})
        later = await restarted.poll(url)
    assert [i.id for i in again.items] == ["127.0.0.1#x4"]
    assert (again.known, again.earlier) == (3, 3)
    assert [i.id for i in later.items] == ["127.0.0.1#x5"]
    assert (later.known, later.earlier) == (4, 0)  # known now, but not from an earlier run
    lines = [entry for entry in logs if "earlier run" in entry["event"]]
    assert lines == [
        {
            "event": "news feed: skipped items an earlier run already recorded",
            "log_level": "info",
            "url": url,
            "count": 3,
        }
    ]
