"""The parts of a running engine as `bot/assemble.py` hands them out, and the wrapper that makes
a file source commit its own news: plain records with no adapter in sight, so a caller can name
them without importing what builds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.bus import Bus
from bot.clock import Clock
from bot.config import Settings
from bot.engine import Engine
from bot.events import NewsItem
from bot.latency import NewsToOrder
from bot.protocols import Broker, LiveBroker, MarketStream, NewsSource, Publish, SentimentModel
from bot.signals import SignalService
from bot.symbols import SymbolTable

if TYPE_CHECKING:  # sqlmodel/sqlalchemy: kept off `lorabot classify`'s imports
    from bot.store import Store


@dataclass
class Parts:
    settings: Settings
    clock: Clock
    bus: Bus
    store: Store
    symbols: SymbolTable
    model: SentimentModel
    signals: SignalService
    broker: Broker
    engine: Engine
    # Live only: the venue broker (the same object as `broker`), None in paper mode and replay.
    live: LiveBroker | None = None
    news_sources: list[NewsSource] = field(default_factory=list)
    market_streams: list[MarketStream] = field(default_factory=list)
    # Live only: news-to-order latency, fed to the console's /metrics and the benchmark.
    latency: NewsToOrder | None = None


@dataclass
class ReplayFiles:
    """`lorabot run --replay-news/--replay-bars`: files played out as live sources."""

    news: Path | None = None
    bars: Path | None = None
    speed: float = 1.0
    rebase: bool = True
    skip_bad_rows: bool = False  # `--skip-bad-rows`: report each bad row and play the others


class _Committing:
    """A source whose news items the store records as they are published (sources that do not
    write their own, like file playback): one writer per record, and the writer is the source."""

    def __init__(self, source: NewsSource, store: Store) -> None:
        self._source = source
        self._store = store
        self.name = source.name

    async def run(self, publish: Publish) -> None:
        store = self._store

        async def commit_then_publish(event: object) -> None:
            if isinstance(event, NewsItem):
                store.record_news(event)
            await publish(event)

        await self._source.run(commit_then_publish)


def committing(source: NewsSource, store: Store) -> NewsSource:
    return _Committing(source, store)
