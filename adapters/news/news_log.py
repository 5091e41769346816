"""What the news poller needs of a store: the news log, not the whole trading journal.

The poller is the one writer of the news it publishes (it records and commits each item before
publishing it), so it needs the item table, the de-duplication look-ups and its feed bookkeeping,
and nothing about orders, fills or signals. `bot.store.Store` satisfies this protocol today; the
store package's `NewsLog` can be passed the same way once it exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from bot.events import NewsItem


class NewsLog(Protocol):
    def record_news(
        self, item: NewsItem, raw: dict[str, Any] | None = None, title_key: str = ""
    ) -> None: ...

    def mark_news(self, news_id: str, status: str) -> None: ...

    def flush(self) -> None:
        """Commit everything recorded so far (the poller calls it before it publishes)."""
        ...

    def news_ids(self, ids: Iterable[str]) -> set[str]: ...

    def news_title_keys(self, keys: Iterable[str], since: datetime) -> dict[str, datetime]: ...

    def feed_state(self, url: str) -> dict[str, Any] | None: ...

    def save_feed_state(self, url: str, **values: Any) -> None: ...
