"""Clean entries to `NewsItem`s: id, capped body, symbols, and whether the item is stale.

Stale means "we could not have read it when it came out", so the strategy must not trade on it:
- it was already in its feed when this process first fetched that feed and was published before
  this process started (it appeared while lorabot was down, or is the backlog a first poll finds);
- or it was published longer ago than `[news] max_age`, whenever it turned up.
An item that first shows up in a later poll appeared while lorabot was listening, so it is fresh
even if its date is a little before start-up (feed dates have second precision, and publishers
and CDNs often list an item minutes after its stated time).

An entry without a date takes its received time and is marked `undated`; found by the first
successful fetch of its feed it was already there at start-up, so it is stale too, while one that
shows up in a later poll appeared since the previous poll and is fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.news.clean import title_key, truncate
from adapters.news.identity import entry_id
from adapters.news.parse import Entry
from bot.events import NewsItem
from bot.symbols import SymbolTable


@dataclass(frozen=True, slots=True)
class Staleness:
    """The staleness rule's two inputs: when this process started, and the longest fresh age."""

    started_at: datetime
    max_age: timedelta

    def is_stale(
        self, published: datetime, received: datetime, *, undated: bool, first: bool
    ) -> bool:
        if undated:
            return first
        if received - published > self.max_age:
            return True
        return first and published < self.started_at


@dataclass(frozen=True, slots=True)
class Candidate:
    """A new item as built from its entry, with what the store keeps beside it."""

    item: NewsItem
    title_key: str
    raw: dict[str, object]


def build_item(
    entry: Entry,
    *,
    feed_url: str,
    source: str,
    received: datetime,
    symbols: SymbolTable,
    max_body_chars: int,
    staleness: Staleness,
    first_fetch: bool,
) -> Candidate:
    undated = entry.published is None
    published = entry.published or received
    body = truncate(entry.body, max_body_chars) if entry.body != entry.title else ""
    item = NewsItem(
        id=entry_id(entry.guid, entry.link, feed_url=feed_url, source=source, title=entry.title),
        source=source,
        title=entry.title,
        body=body,
        link=entry.link,
        published=published,
        received=received,
        symbols=symbols.tag(entry.title, body),
        stale=staleness.is_stale(published, received, undated=undated, first=first_fetch),
        undated=undated,
    )
    return Candidate(item, title_key(entry.title), entry.raw)
