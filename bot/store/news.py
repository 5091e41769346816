"""The news log: news items, how far the model got with each, and the pollers' feed state.

The news poller and the signal service need only this part of the store, so they can be given a
`NewsLog` (the `Store` is one) and nothing that writes orders or fills. Items are unique by id:
writing one twice after a restart is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bot.events import NewsItem
from bot.store.buffer import TABLES, WriteBuffer, upsert
from bot.store.rows import news_from_row, news_row
from bot.tables import FeedStateRecord

_FEEDS: sa.Table = FeedStateRecord.__table__  # type: ignore[attr-defined]
_CHUNK = 500  # ids per IN (...) query: well under every backend's parameter limit


class NewsLog:
    """News items and feed state on a shared write buffer."""

    def __init__(self, buffer: WriteBuffer) -> None:
        self.buffer = buffer

    def flush(self) -> None:
        """Commit everything queued (news and whatever else shares the buffer)."""
        self.buffer.flush()

    def record_news(
        self, item: NewsItem, raw: dict[str, Any] | None = None, title_key: str = ""
    ) -> None:
        self.buffer.queue("news", news_row(item, raw, title_key))

    def mark_news(self, news_id: str, status: str) -> None:
        """pending | done | failed | skipped: how far the model got with an item."""
        self.buffer.queue("news_status", {"id": news_id, "signal_status": status})

    def has_news(self, news_id: str) -> bool:
        return bool(self.news_ids([news_id]))

    def news_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are already stored (for de-duplication across restarts)."""
        self.flush()
        wanted = list(ids)
        table = TABLES["news"]
        found: set[str] = set()
        with self.buffer.engine.connect() as connection:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows = connection.execute(sa.select(table.c.id).where(table.c.id.in_(chunk)))
                found.update(row.id for row in rows)
        return found

    def news_title_keys(self, keys: Iterable[str], since: datetime) -> dict[str, datetime]:
        """Normalised titles already stored, each with its latest `received` at or after `since`.

        The news poller uses it to drop the same story arriving from a second outlet under another
        id (cross-feed de-duplication by `title_key`).
        """
        self.flush()
        wanted = sorted({key for key in keys if key})
        table = TABLES["news"]
        found: dict[str, datetime] = {}
        with self.buffer.engine.connect() as connection:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows = connection.execute(
                    sa.select(table.c.title_key, sa.func.max(table.c.received).label("latest"))
                    .where(table.c.title_key.in_(chunk), table.c.received >= since)
                    .group_by(table.c.title_key)
                )
                for row in rows:
                    latest = row.latest
                    if isinstance(latest, str):  # SQLite's max() hands back the stored text
                        latest = datetime.fromisoformat(latest)
                    if latest.tzinfo is None:
                        latest = latest.replace(tzinfo=UTC)
                    found[row.title_key] = latest
        return found

    def pending_news(self, limit: int = 1000) -> list[NewsItem]:
        """Items the model has not answered yet (it was down, or the process died first)."""
        self.flush()
        table = TABLES["news"]
        query = (
            sa.select(table)
            .where(table.c.signal_status.in_(["pending", "failed"]))
            .order_by(table.c.received)
            .limit(limit)
        )
        with self.buffer.engine.connect() as connection:
            return [news_from_row(row) for row in connection.execute(query)]

    # -- feed state (the news poller's conditional GET and backoff) ---------------------------

    def feed_state(self, url: str) -> dict[str, Any] | None:
        with self.buffer.engine.connect() as connection:
            row = connection.execute(sa.select(_FEEDS).where(_FEEDS.c.url == url)).first()
        return dict(row._mapping) if row is not None else None

    def save_feed_state(self, url: str, **values: Any) -> None:
        row = {"url": url, **values}
        self.buffer.write(
            lambda connection: upsert(connection, _FEEDS, [row], ["url"], update=True),
            f"the state of feed {url}",
        )
