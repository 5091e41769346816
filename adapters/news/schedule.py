"""When each feed is polled next, on the injected clock.

Each feed is due at once when polling starts, then every `interval` seconds (spread by up to
`jitter` seconds either way, so feeds of one host do not fire in lock-step) counted from the
moment it was last due, not from when its poll ended. A failing feed is moved to "now + its
backoff" instead. The clock decides every due time, so a replay clock drives the schedule as
deterministically as it drives the engine; the poller alone decides what a due feed does.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.news.results import PollResult
from bot.clock import Clock, Timer
from bot.log import get_logger
from bot.protocols import Publish

log = get_logger("adapters.news")


@dataclass(slots=True)
class _Feed:
    interval: float
    jitter: float
    on_due: Callable[[], None]
    timer: Timer | None = None


class FeedTimers:
    def __init__(self, clock: Clock, *, rng: random.Random | None = None) -> None:
        self.clock = clock
        self._rng = rng or random.Random()
        self._feeds: dict[str, _Feed] = {}

    def start(
        self, key: str, *, interval: float, jitter: float, on_due: Callable[[], None]
    ) -> None:
        """Call `on_due` now and then on the feed's interval until `stop`."""
        feed = self._feeds[key] = _Feed(interval, jitter, on_due)
        self._due(key, feed)

    def retry_in(self, key: str, seconds: float) -> None:
        """Make the feed due `seconds` from now (a failure's backoff), whatever its interval."""
        feed = self._feeds.get(key)
        if feed is None:  # stopping, or never started: nothing to move
            return
        self._arm(key, feed, self.clock.now() + timedelta(seconds=seconds))

    def stop(self) -> None:
        for feed in self._feeds.values():
            if feed.timer is not None:
                feed.timer.cancel()
        self._feeds.clear()

    def _due(self, key: str, feed: _Feed) -> None:
        spread = self._rng.uniform(-feed.jitter, feed.jitter) if feed.jitter else 0.0
        delay = max(0.0, feed.interval + spread)
        self._arm(key, feed, self.clock.now() + timedelta(seconds=delay))
        feed.on_due()

    def _arm(self, key: str, feed: _Feed, when: datetime) -> None:
        if feed.timer is not None:
            feed.timer.cancel()

        def fire(_: datetime) -> None:
            if self._feeds.get(key) is feed:
                self._due(key, feed)

        feed.timer = self.clock.schedule_at(when, fire, f"poll {key}")


async def hand_over(
    result: PollResult, timers: FeedTimers | None, key: str, publish: Publish, what: str
) -> None:
    """After one poll: move the source's next turn to the backoff the poll asked for, then
    publish its items one by one. An item that fails to publish is already committed to the
    store as pending (the engine's retry takes it up), so one failure never stops the rest."""
    if result.retry_in is not None and timers is not None:
        timers.retry_in(key, result.retry_in)
    for item in result.items:
        try:
            await publish(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(f"publishing {what} failed", url=key, id=item.id)
