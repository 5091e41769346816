"""News intake: RSS/Atom feeds polled with aiohttp, parsed by feedparser, scheduled on the
injected clock.

`NewsPoller` is the daemon's `NewsSource` (`run(publish)`) and also fetches once
(`fetch_once`, used by `lorabot news --once`); `NewsRecorder` appends new items to the JSONL news
file that backtests replay. Importing this package stays light: aiohttp and feedparser load
with the modules that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.news.poller import NewsPoller, PollReport, PollResult
    from adapters.news.recorder import NewsRecorder

__all__ = ["NewsPoller", "NewsRecorder", "PollReport", "PollResult", "feed_weights", "source_name"]


def __getattr__(name: str) -> Any:
    if name in ("NewsPoller", "PollReport", "PollResult"):
        from adapters.news import poller

        return getattr(poller, name)
    if name == "NewsRecorder":
        from adapters.news.recorder import NewsRecorder

        return NewsRecorder
    if name in ("source_name", "feed_weights"):
        from adapters.news import identity

        return getattr(identity, name)
    raise AttributeError(name)
