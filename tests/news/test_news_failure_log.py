"""A feed that keeps failing is logged once, not on every retry (issue 13.2): again when the
reason changes, after `FAILURE_REPEAT`, and when it recovers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import structlog
from newsfeed_server import NOW, Clock, FeedServer, rss
from structlog.testing import capture_logs

from adapters.news.poller import FAILURE_REPEAT, NewsPoller


@pytest.fixture(autouse=True)
def every_level() -> None:
    """Another test may have set a level filter (setup_logging): the debug lines count here."""
    structlog.reset_defaults()


def _warnings(logs: list[dict[str, Any]]) -> list[str]:
    return [entry["reason"] for entry in logs if entry["event"] == "news feed failed"]


async def test_a_failing_feed_is_logged_once_then_on_change_repeat_and_recovery(
    server: FeedServer, make_poller: Callable[..., NewsPoller]
) -> None:
    clock = Clock()
    url = server.status("/down", 500)
    poller = make_poller(url, clock=clock)
    with capture_logs() as logs:
        for _ in range(5):
            result = await poller.poll(url)
            clock.advance(60)
        assert result.error.startswith("HTTP 500") and poller.state(url).failures == 5
        assert _warnings(logs) == [result.error]  # five failures, one warning
        assert [e["failures"] for e in logs if e["event"] == "news feed still failing"] == [
            2,
            3,
            4,
            5,
        ]
        assert all(e["log_level"] == "debug" for e in logs if e["event"] != "news feed failed")

        clock.advance(FAILURE_REPEAT.total_seconds())
        await poller.poll(url)  # still failing, half an hour later: said again
        server.status("/down", 503)
        await poller.poll(url)  # a new reason: said at once
        assert len(_warnings(logs)) == 3 and _warnings(logs)[2].startswith("HTTP 503")

        server.feed("/down", rss([{"title": "Bitcoin is back", "guid": "b1", "published": NOW}]))
        assert (await poller.poll(url)).ok
        await poller.poll(url)
        server.status("/down", 500)
        await poller.poll(url)  # failing again after a recovery: a first failure again
    recovered = [entry for entry in logs if entry["event"] == "news feed recovered"]
    assert len(recovered) == 1 and recovered[0]["after_failures"] == 7
    assert len(_warnings(logs)) == 4
