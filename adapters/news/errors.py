"""Why a feed produced nothing this time, phrased for the log and for `lorabot news` output.

A feed error never escapes the poller: it is logged with the feed's URL, counted in the feed's
state and answered with backoff. Other feeds go on as if nothing happened.
"""

from __future__ import annotations


class FeedError(Exception):
    """One feed fetch or parse failed. `retry_after`: the server's own wait, in seconds."""

    def __init__(
        self, url: str, reason: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
