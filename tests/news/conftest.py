"""Fixtures for the news tests: a live feed server, a real SQLite store, pollers wired to both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from newsfeed_server import START, Clock, FeedServer, news_config

from adapters.news.poller import NewsPoller
from bot.clock import Clock as AnyClock
from bot.config import FeedConfig, Settings
from bot.store import Store
from bot.symbols import SymbolTable


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    feed_server = await FeedServer().start()
    try:
        yield feed_server
    finally:
        await feed_server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'news.sqlite'}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def symbols() -> SymbolTable:
    return SymbolTable.from_settings(Settings())


@pytest.fixture
async def make_poller(
    store: Store, symbols: SymbolTable
) -> AsyncIterator[Callable[..., NewsPoller]]:
    """Pollers on the test server; each one's HTTP session is closed when the test ends (a
    test may call `poll` directly, which opens it, where `run` and `fetch_once` close it)."""
    made: list[NewsPoller] = []

    def make(
        *feeds: str | FeedConfig,
        clock: AnyClock | None = None,
        started_at: datetime | None = START,
        on_store: Store | None = None,
        sink: Any = None,
        **config: Any,
    ) -> NewsPoller:
        configs = tuple(f if isinstance(f, FeedConfig) else FeedConfig(url=f) for f in feeds)
        poller = NewsPoller(
            news_config(feeds=configs, **config),
            on_store or store,
            symbols,
            clock=clock or Clock(),
            started_at=started_at,
            sink=sink,
        )
        made.append(poller)
        return poller

    yield make
    for poller in made:
        await poller.fetcher.close()
