"""The news source: every configured feed polled on its own schedule, each new item published once.

How it keeps its promises:
- *Once*: an item is new when neither its id (guid/link) nor, within `title_dedup_window`, its
  normalised title is in the store. The check, the store write (raw entry and title key kept) and
  its commit happen in one synchronous step with no `await` in between, so two feeds polled at
  the same moment cannot both claim one story, and a restart finds everything already claimed.
- *Never lost*: an item is committed to the store before it is published, and a feed's
  ETag/Last-Modified are saved only after the items of that response are committed; a crash in
  between costs a re-fetch, never an item. A `sink` (the JSONL recorder) is written before the
  commit, so the file can never miss an item that the store already counts as seen.
- *Isolated*: each feed polls in its own task with its own deadline; `FeedTimers`, on the
  injected clock, only says when a feed is due. A failing feed backs off (doubling from
  `backoff_initial` up to `backoff_max`, never sooner than its interval, and never sooner than
  the server's Retry-After); the others are not touched.
- *One clock*: `received`, feed bookkeeping and every due time come from the injected `Clock`
  (monotonic timers measure only HTTP deadlines and elapsed times).
- *Quiet when failing*: a feed that keeps failing (no network, an outlet down) is logged once at
  warning level, then again only when the reason changes, every `FAILURE_REPEAT`, or at debug
  level; it is logged when it recovers. Retrying never stops.
- *Stale is data, not an error*: items published before start-up or older than `max_age` are
  recorded and published flagged stale (see `adapters.news.items`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from adapters.news.dedup import Deduplicator
from adapters.news.errors import FeedError
from adapters.news.feed_state import FeedState, backoff_delay
from adapters.news.fetch import Fetcher, FetchResult
from adapters.news.identity import source_name
from adapters.news.items import Staleness, build_item
from adapters.news.news_log import NewsLog
from adapters.news.parse import ParsedFeed, parse_feed
from adapters.news.results import PollReport, PollResult
from adapters.news.schedule import FeedTimers, hand_over
from bot.clock import Clock
from bot.config import FeedConfig, NewsConfig, Settings
from bot.errors import UserError
from bot.events import NewsItem
from bot.log import get_logger
from bot.protocols import Publish
from bot.symbols import SymbolTable

__all__ = ["FeedState", "NewsPoller", "PollReport", "PollResult", "backoff_delay"]

log = get_logger("adapters.news")

FAILURE_REPEAT = timedelta(minutes=30)
"""How often a feed that is still failing for the same reason is logged again at warning level."""
_RETRYING = (
    "retrying; logged again when it recovers, the reason changes, "
    f"or in {int(FAILURE_REPEAT.total_seconds() // 60)} min"
)

OnResult = Callable[[PollResult], Awaitable[None]]
Sink = Callable[[Sequence[NewsItem]], object]
"""Called with each poll's new items *before* they are committed (the news file recorder)."""


class NewsPoller:
    """All configured feeds as one `NewsSource` (`run`), plus one-shot fetching (`fetch_once`)."""

    name = "news"

    def __init__(
        self,
        config: NewsConfig,
        store: NewsLog,
        symbols: SymbolTable,
        *,
        clock: Clock,
        started_at: datetime | None = None,
        feeds: Sequence[FeedConfig] | None = None,
        sink: Sink | None = None,
        for_engine: bool = True,
    ) -> None:
        """`for_engine=False` (the `lorabot news` command): items are recorded for history only,
        marked `skipped` in the store, so a daemon sharing that store never re-queues them for
        its model as if they had just arrived."""
        self.config = config
        self.store = store
        self.symbols = symbols
        self.clock = clock
        self.started_at = started_at or clock.now()
        self.fetcher = Fetcher(
            user_agent=config.user_agent,
            per_host_concurrency=config.per_host_concurrency,
            max_bytes=config.max_bytes,
            max_redirects=config.max_redirects,
            clock=clock,
        )
        self.feeds: tuple[FeedConfig, ...] = tuple(feeds if feeds is not None else config.feeds)
        self._states: dict[str, FeedState] = {}
        self._dedup = Deduplicator(store, config.title_dedup_window)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._timers: FeedTimers | None = None
        self.sink = sink
        self.for_engine = for_engine

    @classmethod
    def from_settings(
        cls, settings: Settings, store: NewsLog, *, clock: Clock, **kwargs: Any
    ) -> NewsPoller:
        return cls(settings.news, store, SymbolTable.from_settings(settings), clock=clock, **kwargs)

    @property
    def staleness(self) -> Staleness:
        return Staleness(self.started_at, timedelta(seconds=self.config.max_age))

    # -- feeds ----------------------------------------------------------------------------

    def state(self, feed: FeedConfig | str) -> FeedState:
        config = feed if isinstance(feed, FeedConfig) else self._config_for(feed)
        state = self._states.get(config.url)
        if state is None:
            state = self._states[config.url] = FeedState(
                config=config,
                source=source_name(config.url, config.name),
                interval=config.interval or self.config.poll_interval,
                timeout=config.timeout or self.config.timeout,
            )
        if not state.loaded:
            stored = self.store.feed_state(config.url) or {}
            state.etag = stored.get("etag") or ""
            state.last_modified = stored.get("last_modified") or ""
            state.failures = int(stored.get("error_count") or 0)
            state.items_seen = int(stored.get("items_seen") or 0)
            state.loaded = True
        return state

    def _config_for(self, url: str) -> FeedConfig:
        for feed in self.feeds:
            if feed.url == url.strip():
                return feed
        try:
            return FeedConfig(url=url)
        except ValueError as error:
            raise UserError(f"feed {url!r}: not an http(s) URL") from error

    @property
    def enabled_feeds(self) -> list[FeedConfig]:
        return [feed for feed in self.feeds if feed.enabled]

    # -- one poll of one feed ---------------------------------------------------------------

    async def poll(self, feed: FeedConfig | str, *, record: bool = True) -> PollResult:
        """Fetch, parse and de-duplicate one feed; record what is new unless `record` is False.

        With `record=False` nothing is written (no items, no feed state): a look that leaves
        every item new for the recorder or daemon that owns this store.
        """
        state = self.state(feed)
        result = PollResult(url=state.url, source=state.source)
        started = asyncio.get_running_loop().time()
        try:
            await self._poll_into(state, result, record)
        except FeedError as error:
            self._failed(state, result, error.reason, error.retry_after, record)
        except Exception as error:  # a bug or a library surprise must not end the poller
            log.exception("news feed poll crashed", url=state.url)
            self._failed(
                state, result, f"internal error: {type(error).__name__}: {error}", None, record
            )
        result.elapsed = asyncio.get_running_loop().time() - started
        return result

    async def _poll_into(self, state: FeedState, result: PollResult, record: bool) -> None:
        fetched = await self.fetcher.fetch(
            state.url,
            timeout=state.timeout,
            etag=state.etag,
            last_modified=state.last_modified,
        )
        if fetched.moved_to:
            log.info("news feed moved permanently", url=state.url, to=fetched.moved_to)
        digest = hashlib.sha1(fetched.body).digest() if not fetched.not_modified else b""
        if fetched.not_modified or (digest and digest == state.body_digest):
            # Servers without ETag/Last-Modified resend the same bytes: no parse for them either.
            result.not_modified = True
            self._succeeded(state, fetched, [], record)
            return
        parsed: ParsedFeed = await asyncio.to_thread(
            parse_feed, fetched.body, url=fetched.final_url, content_type=fetched.content_type
        )
        received = self.clock.now()
        if parsed.warning:
            result.warning = parsed.warning
            log.warning("news feed is damaged", url=state.url, problem=parsed.warning)
        if parsed.invalid:
            result.invalid = parsed.invalid
            log.warning(
                "news feed has invalid entries",
                url=state.url,
                count=len(parsed.invalid),
                entries="; ".join(parsed.invalid[:5]),
            )
        candidates = [
            build_item(
                entry,
                feed_url=state.url,
                source=state.source,
                received=received,
                symbols=self.symbols,
                max_body_chars=self.config.max_body_chars,
                staleness=self.staleness,
                first_fetch=not state.fetched,
            )
            for entry in parsed.entries
        ]
        # From here to the commit there is no await: check, record and commit are one step.
        sorted_out = self._dedup.sort(candidates)
        fresh = sorted_out.fresh
        result.known = len(candidates) - len(fresh)
        result.earlier = sorted_out.earlier
        if sorted_out.earlier:
            log.info(
                "news feed: skipped items an earlier run already recorded",
                url=state.url,
                count=sorted_out.earlier,
            )
        # Oldest first; feeds list newest first, so equal times keep the feed's order reversed.
        fresh.reverse()
        fresh.sort(key=lambda candidate: candidate.item.published or candidate.item.received)
        items = [candidate.item for candidate in fresh]
        if record:
            if self.sink is not None and items:
                self.sink(items)
            for candidate in fresh:
                self.store.record_news(
                    candidate.item, raw=candidate.raw, title_key=candidate.title_key
                )
                if not self.for_engine:
                    self.store.mark_news(candidate.item.id, "skipped")
            self.store.flush()
        self._dedup.remember(fresh)
        result.items = items
        self._succeeded(state, fetched, items, record)
        if record:
            state.body_digest = digest
        # New items are what a trader wants to see arrive; a poll with nothing new is noise.
        (log.info if items and record else log.debug)(
            "news feed polled",
            url=state.url,
            source=state.source,
            new=len(items),
            stale=sum(1 for item in items if item.stale),
            known=result.known,
            elapsed=round(fetched.elapsed, 3),
        )

    def _succeeded(
        self, state: FeedState, fetched: FetchResult, items: list[NewsItem], record: bool
    ) -> None:
        if not record:
            return
        if state.failures or state.failure_logged_at is not None:
            log.info("news feed recovered", url=state.url, after_failures=state.failures)
        state.failure_logged_at = None
        state.failure_logged_reason = ""
        state.fetched = True
        state.failures = 0
        state.items_seen += len(items)
        if not fetched.not_modified:
            state.etag = fetched.etag
            state.last_modified = fetched.last_modified
        self._save_state(
            state.url,
            etag=state.etag,
            last_modified=state.last_modified,
            last_success=self.clock.now(),
            last_error="",
            error_count=0,
            items_seen=state.items_seen,
        )

    def _save_state(self, url: str, **values: Any) -> None:
        """Feed state is bookkeeping: a store hiccup here is logged, never raised into a poll."""
        try:
            self.store.save_feed_state(url, **values)
        except Exception:
            log.exception("news feed state could not be saved", url=url)

    def _failed(
        self,
        state: FeedState,
        result: PollResult,
        reason: str,
        retry_after: float | None,
        record: bool,
    ) -> None:
        failures = state.failures + 1
        delay = backoff_delay(
            failures,
            interval=state.interval,
            initial=self.config.backoff_initial,
            maximum=self.config.backoff_max,
            retry_after=retry_after,
        )
        result.error = reason
        result.retry_in = delay
        if record:
            state.failures = failures
            self._save_state(state.url, last_error=reason[:500], error_count=failures)
        now = self.clock.now()
        last = state.failure_logged_at
        if last is None or reason != state.failure_logged_reason or now - last >= FAILURE_REPEAT:
            state.failure_logged_at = now
            state.failure_logged_reason = reason
            log.warning(
                "news feed failed",
                url=state.url,
                source=state.source,
                reason=reason,
                failures=failures,
                retry_in=round(delay, 3),
                retrying=_RETRYING,
            )
        else:
            log.debug(
                "news feed still failing",
                url=state.url,
                reason=reason,
                failures=failures,
                retry_in=round(delay, 3),
            )

    # -- one-shot ---------------------------------------------------------------------------

    async def fetch_once(
        self,
        urls: Sequence[str] | None = None,
        *,
        record: bool = True,
        on_result: OnResult | None = None,
    ) -> PollReport:
        """Poll the given feeds (default: every enabled one) once, all at the same time.

        `on_result` is awaited for each feed as soon as that feed is done, so a slow feed never
        holds back the others' output.
        """
        feeds = [self._config_for(url) for url in urls] if urls else self.enabled_feeds
        self.fetcher.open()

        async def one(feed: FeedConfig) -> PollResult:
            result = await self.poll(feed, record=record)
            if on_result is not None:
                await on_result(result)
            return result

        try:
            results = await asyncio.gather(*(one(feed) for feed in feeds))
        finally:
            await self.fetcher.close()
        return PollReport(list(results))

    # -- the daemon's source ----------------------------------------------------------------

    async def run(self, publish: Publish) -> None:
        """Poll every enabled feed on its interval until cancelled, publishing each new item."""
        feeds = self.enabled_feeds
        if not feeds:
            log.warning("no news feeds configured: add [[news.feeds]] tables to the config")
            await asyncio.Event().wait()
        self.fetcher.open()
        timers = self._timers = FeedTimers(self.clock)
        try:
            for feed in feeds:
                state = self.state(feed)
                timers.start(  # due at once: catch up after a start or restart
                    state.url,
                    interval=state.interval,
                    jitter=state.interval * self.config.jitter,
                    on_due=functools.partial(self._due, state, publish),
                )
            log.info(
                "news polling started",
                feeds=len(feeds),
                polling=[f"{self.state(feed).source} {feed.url}" for feed in feeds],
            )
            await asyncio.Event().wait()
        finally:
            timers.stop()
            self._timers = None
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.clear()
            await self.fetcher.close()
            log.info("news polling stopped")

    def _due(self, state: FeedState, publish: Publish) -> None:
        """A feed fell due: start its poll unless the previous one is still running."""
        running = self._tasks.get(state.url)
        if running is not None and not running.done():
            log.debug("news feed still polling, skipped a turn", url=state.url)
            return
        task = asyncio.create_task(self._poll_and_publish(state, publish), name=state.url)
        self._tasks[state.url] = task
        task.add_done_callback(lambda done: self._forget(state.url, done))

    def _forget(self, url: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(url) is task:
            del self._tasks[url]

    async def _poll_and_publish(self, state: FeedState, publish: Publish) -> None:
        result = await self.poll(state.config)
        await hand_over(result, self._timers, state.url, publish, "a news item")
