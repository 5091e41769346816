"""One feed's polling state, and how long a failing feed waits before it is tried again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.config import FeedConfig


def backoff_delay(
    failures: int, *, interval: float, initial: float, maximum: float, retry_after: float | None
) -> float:
    """Seconds until a feed that failed `failures` times in a row is tried again."""
    delay = min(maximum, initial * 2 ** max(0, failures - 1))
    delay = max(delay, interval)
    if retry_after is not None:
        delay = max(delay, min(retry_after, maximum))
    return delay


@dataclass(slots=True)
class FeedState:
    """What the poller knows about one feed; the durable part lives in the store's feed_state."""

    config: FeedConfig
    source: str
    interval: float
    timeout: float
    etag: str = ""
    last_modified: str = ""
    failures: int = 0
    items_seen: int = 0
    fetched: bool = False  # a successful fetch in this process (undated items after it are fresh)
    loaded: bool = False
    body_digest: bytes = b""  # of the last body fully processed: the same bytes again are skipped
    # The failure last logged at warning level (a feed that keeps failing is not logged on every
    # retry): when, and why. None while the feed works.
    failure_logged_at: datetime | None = None
    failure_logged_reason: str = ""

    @property
    def url(self) -> str:
        return self.config.url
