"""Bybit's own announcements as a `NewsSource`: `/v5/announcements/index`, polled.

The venue's listings and delistings are among the most price-moving texts in crypto, and they
come from the exchange lorabot trades on. The source keeps the news adapter's promises:
- *Once*: an item's id is its url. Each poll reads page 1 (newest first) and pages on only while
  a whole page is new, so a steady state costs one request a minute; it stops at the first page
  holding an item already seen (in this process or in the news log, so across restarts too), at
  the end of the list, at items older than `[news] max_age`, or after `max_pages`. The final
  check against the log, the writes and the commit are one synchronous step, as in the poller.
- *Never lost*: items are committed to the store (raw record kept, with its type key) before they
  are published; a `sink` (the JSONL recorder) is written before the commit.
- *Backed off like every Bybit call*: requests go through `BybitRest`, which waits for Bybit's
  reset time on 10006 and retries 5xx and network errors; a poll that still fails is tried again
  after `backoff_delay` (doubling from `[news] backoff_initial`, never sooner than `interval`).
- *Stale as other news is* (`adapters.news.items.Staleness`): what the first poll finds and was
  published before start-up, or anything older than `max_age`, is recorded flagged stale.
- *Bad input*: a malformed record is logged with its reason and skipped; the rest of the page is
  kept.
- *One clock*: `received` and the schedule (`FeedTimers`) come from the injected clock.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from adapters.bybit.announcement_items import SOURCE, announcement_candidate, parse_announcement
from adapters.bybit.endpoints import endpoints
from adapters.bybit.errors import BybitError
from adapters.bybit.fields import ParseError
from adapters.bybit.rest import BybitRest
from adapters.news.dedup import RecentKeys
from adapters.news.feed_state import backoff_delay
from adapters.news.items import Candidate, Staleness
from adapters.news.news_log import NewsLog
from adapters.news.results import PollResult
from adapters.news.schedule import FeedTimers, hand_over
from bot.clock import Clock
from bot.config import AnnouncementsConfig, Settings
from bot.events import NewsItem
from bot.log import get_logger
from bot.protocols import Publish
from bot.symbols import SymbolTable

__all__ = ["PATH", "SOURCE", "BybitAnnouncements", "announcements_host"]

log = get_logger("adapters.bybit.announcements")

PATH = "/v5/announcements/index"
MAINNET_REST = "https://api.bybit.com"
Sink = Callable[[Sequence[NewsItem]], object]
OnResult = Callable[[PollResult], Awaitable[None]]


def announcements_host(settings: Settings) -> str:
    """Where the announcements are read: `[bybit] rest_url` when set (the simulator), else
    mainnet's public REST host whatever the network.

    They are the exchange's own texts and need no keys, so nothing is signed and no account is
    involved; demo trading's host lists only market, trade and account endpoints (Bybit's "Demo
    Trading Service" page), and demo trading runs on mainnet's public data anyway.
    """
    if settings.bybit.rest_url:
        return endpoints(settings).rest
    return MAINNET_REST


class BybitAnnouncements:
    """The announcements as one `NewsSource` (`run`), plus one poll (`poll`, `fetch_once`)."""

    name = SOURCE

    def __init__(
        self,
        config: AnnouncementsConfig,
        rest: BybitRest,
        store: NewsLog,
        symbols: SymbolTable,
        *,
        clock: Clock,
        max_age: float,
        max_body_chars: int,
        backoff_initial: float,
        backoff_max: float,
        default_quote: str = "USDT",
        started_at: datetime | None = None,
        sink: Sink | None = None,
        for_engine: bool = True,
    ) -> None:
        """`for_engine=False` (`lorabot news`): items are recorded as `skipped`, so a daemon
        sharing the store never queues them for its model as if they had just arrived."""
        self.config = config
        self.rest = rest
        self.store = store
        self.symbols = symbols
        self.clock = clock
        self.started_at = started_at or clock.now()
        self.staleness = Staleness(self.started_at, timedelta(seconds=max_age))
        self.max_body_chars = max_body_chars
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.default_quote = default_quote
        self.sink = sink
        self.for_engine = for_engine
        self.failures = 0
        self.items_seen = 0
        self.fetched = False  # a successful poll in this process: what turns up later is fresh
        self._seen = RecentKeys()
        self._timers: FeedTimers | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: NewsLog,
        symbols: SymbolTable,
        *,
        clock: Clock,
        **kwargs: Any,
    ) -> BybitAnnouncements:
        """On `announcements_host`, with the news section's staleness, body cap and backoff."""
        news = settings.news
        rest = BybitRest(settings.bybit, announcements_host(settings), clock)
        quote = settings.engine.quote_currency
        return cls(
            settings.bybit.announcements,
            rest,
            store,
            symbols,
            clock=clock,
            max_age=news.max_age,
            max_body_chars=news.max_body_chars,
            backoff_initial=news.backoff_initial,
            backoff_max=news.backoff_max,
            default_quote=quote,
            **kwargs,
        )

    @property
    def url(self) -> str:
        """Where the items come from: names the source in logs, results and feed state."""
        return f"{self.rest.base_url}{PATH}"

    # -- one poll ---------------------------------------------------------------------------

    async def poll(self, *, record: bool = True) -> PollResult:
        """Read the new items; record and commit them unless `record` is False (a look only)."""
        result = PollResult(url=self.url, source=SOURCE)
        started = asyncio.get_running_loop().time()
        try:
            candidates = await self._read(result)
            self._take_new(candidates, result, record)
        except (BybitError, ParseError) as error:
            self._failed(result, str(error), record)
        except Exception as error:  # a bug or a library surprise must not end the source
            log.exception("bybit announcements poll crashed", url=self.url)
            self._failed(result, f"internal error: {type(error).__name__}: {error}", record)
        result.elapsed = asyncio.get_running_loop().time() - started
        return result

    async def _read(self, result: PollResult) -> list[Candidate]:
        """Every type's pages, newest first, until the paging rule of the module says stop."""
        candidates: list[Candidate] = []
        for type_key in self.config.types or ("",):
            for page in range(1, self.config.max_pages + 1):
                found, more = await self._page(type_key, page, result)
                candidates.extend(found)
                if not more:
                    break
        return candidates

    async def _page(
        self, type_key: str, page: int, result: PollResult
    ) -> tuple[list[Candidate], bool]:
        """One page's items, and whether the next page could hold new ones."""
        size = self.config.page_size
        answer = await self.rest.request(
            "GET",
            PATH,
            {"locale": self.config.locale, "type": type_key or None, "page": page, "limit": size},
        )
        records = answer.get("list")
        if not isinstance(records, list):
            raise ParseError(f"page {page}: the answer has no list of announcements")
        received = self.clock.now()
        found: list[Candidate] = []
        for index, record in enumerate(records, start=1):
            try:
                announcement = parse_announcement(record)
            except ParseError as error:
                where = f"{type_key + ' ' if type_key else ''}page {page} item {index}"
                result.invalid.append(f"{where}: {error}")
                log.warning("bybit announcement skipped", where=where, reason=str(error))
                continue
            found.append(
                announcement_candidate(
                    announcement,
                    received=received,
                    symbols=self.symbols,
                    staleness=self.staleness,
                    first_fetch=not self.fetched,
                    max_body_chars=self.max_body_chars,
                    default_quote=self.default_quote,
                )
            )
        if len(records) < size or not found:
            return found, False
        ids = [candidate.item.id for candidate in found]
        if any(key in self._seen for key in ids) or self.store.news_ids(ids):
            return found, False
        oldest = min(candidate.item.published or received for candidate in found)
        return found, received - oldest <= self.staleness.max_age

    def _take_new(self, candidates: list[Candidate], result: PollResult, record: bool) -> None:
        """The check against the log, the writes and the commit: one step, no await."""
        stored = self.store.news_ids(candidate.item.id for candidate in candidates)
        fresh: list[Candidate] = []
        batch: set[str] = set()
        earlier = 0
        for candidate in candidates:
            key = candidate.item.id
            if key in self._seen or key in batch:
                continue
            batch.add(key)
            if key in stored:
                earlier += 1
                self._seen.add(key)  # counted once per process, not at every poll
                continue
            fresh.append(candidate)
        fresh.sort(key=lambda candidate: candidate.item.published or candidate.item.received)
        items = [candidate.item for candidate in fresh]
        result.known = len(candidates) - len(fresh)
        result.earlier = earlier
        result.items = items
        if not record:
            return
        if self.sink is not None and items:
            self.sink(items)
        for candidate in fresh:
            self.store.record_news(candidate.item, raw=candidate.raw, title_key=candidate.title_key)
            if not self.for_engine:
                self.store.mark_news(candidate.item.id, "skipped")
        self.store.flush()
        for candidate in fresh:
            self._seen.add(candidate.item.id)
        self._succeeded(len(items))

    def _succeeded(self, count: int) -> None:
        if self.failures:
            log.info("bybit announcements recovered", after_failures=self.failures)
        self.fetched = True
        self.failures = 0
        self.items_seen += count
        self._save_state(
            last_success=self.clock.now(), last_error="", error_count=0, items_seen=self.items_seen
        )

    def _failed(self, result: PollResult, reason: str, record: bool) -> None:
        failures = self.failures + 1
        delay = backoff_delay(
            failures,
            interval=self.config.interval,
            initial=self.backoff_initial,
            maximum=max(self.backoff_max, self.config.interval),
            retry_after=None,
        )
        result.error = reason
        result.retry_in = delay
        if record:
            self.failures = failures
            self._save_state(last_error=reason[:500], error_count=failures)
        log.warning(
            "bybit announcements failed",
            url=self.url,
            reason=reason,
            failures=failures,
            retry_in=round(delay, 3),
        )

    def _save_state(self, **values: Any) -> None:
        """Bookkeeping for `lorabot status`: a store hiccup is logged, never raised into a poll."""
        try:
            self.store.save_feed_state(self.url, **values)
        except Exception:
            log.exception("bybit announcements state could not be saved", url=self.url)

    async def fetch_once(
        self, *, record: bool = True, on_result: OnResult | None = None
    ) -> PollResult:
        """One poll, then the REST session closed (`lorabot news --once`)."""
        try:
            result = await self.poll(record=record)
        finally:
            await self.rest.close()
        if on_result is not None:
            await on_result(result)
        return result

    # -- the daemon's source ----------------------------------------------------------------

    async def run(self, publish: Publish) -> None:
        """Poll every `interval` (at once on start: catch up) until cancelled."""
        timers = self._timers = FeedTimers(self.clock)
        try:
            timers.start(
                self.url,
                interval=self.config.interval,
                jitter=0.0,
                on_due=functools.partial(self._due, publish),
            )
            log.info("bybit announcements polling started", url=self.url)
            await asyncio.Event().wait()
        finally:
            timers.stop()
            self._timers = None
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await self.rest.close()
            log.info("bybit announcements polling stopped")

    def _due(self, publish: Publish) -> None:
        if self._task is not None and not self._task.done():
            log.debug("bybit announcements still polling, skipped a turn")
            return
        self._task = asyncio.create_task(self._poll_and_publish(publish), name=SOURCE)

    async def _poll_and_publish(self, publish: Publish) -> None:
        result = await self.poll()
        await hand_over(result, self._timers, self.url, publish, "a bybit announcement")
