"""How the daemon builds its live news source (`bot.daemon` imports `feed_poller` from here)."""

from __future__ import annotations

from adapters.news.news_log import NewsLog
from adapters.news.poller import NewsPoller
from bot.clock import Clock
from bot.config import Settings
from bot.symbols import SymbolTable


def feed_poller(
    settings: Settings, symbols: SymbolTable, store: NewsLog, clock: Clock
) -> NewsPoller:
    """Every enabled `[[news.feeds]]` as one `NewsSource`, sharing the daemon's store.

    Built when the daemon starts, so that moment (on the daemon's clock) is the start-up that
    staleness is measured from: items already listed at the first poll and published before it
    are flagged stale. The poller commits each item it publishes; nobody else needs to write it.
    """
    return NewsPoller(settings.news, store, symbols, clock=clock)
