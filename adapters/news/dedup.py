"""Which candidates are new: the de-duplication half of the poller's "each item once" promise.

An item is known when its id (guid/link) is in the news log or was seen by this process, or when
its normalised title was, within `title_dedup_window` of its time (the same story from a second
outlet under another id). The log answers across restarts; a bounded in-memory set answers for
this process without a query per entry. What the log knew but this process had not seen yet is
counted separately (`earlier`): those are the headlines an earlier run already recorded, which a
user should hear about once rather than see vanish.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.news.items import Candidate
from adapters.news.news_log import NewsLog

RECENT_LIMIT = 100_000  # ids and titles remembered in memory on top of the store


class RecentKeys:
    """A bounded insertion-ordered set (the in-memory side of de-duplication)."""

    def __init__(self, limit: int = RECENT_LIMIT) -> None:
        self._items: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def add(self, key: str) -> None:
        self._items[key] = None
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Sorted:
    """The new candidates in feed order, and how many known ones an earlier run had recorded."""

    fresh: list[Candidate]
    earlier: int


class Deduplicator:
    def __init__(self, log: NewsLog, title_window: float) -> None:
        self.log = log
        self.window = timedelta(seconds=title_window)
        self._ids = RecentKeys()
        self._titles = RecentKeys()

    def sort(self, candidates: Iterable[Candidate]) -> Sorted:
        """Candidates whose id and (within the window) title are not known yet, first one wins."""
        candidates = list(candidates)
        if not candidates:
            return Sorted([], 0)
        stored_ids = self.log.news_ids(c.item.id for c in candidates)
        window = self.window
        titles: dict[str, datetime] = {}
        if window:
            oldest = min(c.item.published or c.item.received for c in candidates)
            titles = self.log.news_title_keys((c.title_key for c in candidates), oldest - window)
        fresh: list[Candidate] = []
        earlier: list[Candidate] = []
        batch_ids: set[str] = set()
        batch_titles: set[str] = set()
        for candidate in candidates:
            item, key = candidate.item, candidate.title_key
            if item.id in self._ids or item.id in batch_ids:
                continue
            if item.id in stored_ids:
                earlier.append(candidate)
                continue
            if window and key:
                when = item.published or item.received
                if key in batch_titles or key in self._titles:
                    continue
                latest = titles.get(key)
                if latest is not None and latest >= when - window:
                    earlier.append(candidate)
                    continue
            batch_ids.add(item.id)
            if key:
                batch_titles.add(key)
            fresh.append(candidate)
        for candidate in earlier:  # counted once per process, not at every poll
            self._ids.add(candidate.item.id)
        return Sorted(fresh, len(earlier))

    def remember(self, candidates: Iterable[Candidate]) -> None:
        for candidate in candidates:
            self._ids.add(candidate.item.id)
            if candidate.title_key:
                self._titles.add(candidate.title_key)
