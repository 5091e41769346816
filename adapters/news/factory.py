"""How the daemon builds its live news source (`bot.daemon` imports `feed_poller` from here)."""

from __future__ import annotations

from adapters.news.poller import NewsPoller
from bot.config import Settings
from bot.store import Store
from bot.symbols import SymbolTable


def feed_poller(settings: Settings, symbols: SymbolTable, store: Store) -> NewsPoller:
    """Every enabled `[[news.feeds]]` as one `NewsSource`, sharing the daemon's store.

    Built when the daemon starts, so that moment is the start-up that staleness is measured
    from: items already listed at the first poll and published before it are flagged stale.
    """
    return NewsPoller(settings.news, store, symbols)
