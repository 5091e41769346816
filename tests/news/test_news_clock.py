"""The poller lives on the injected clock, and it is the one writer of the news it publishes.

With a `ReplayClock` nothing in the poller may move by itself: `received`, the feed bookkeeping,
every due time and a Retry-After given as a date all come from that clock, so the schedule only
advances when the test advances it.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import sqlalchemy as sa
from newsfeed_server import NOW, FeedServer, rss

from adapters.news.poller import NewsPoller
from bot.clock import ReplayClock
from bot.events import NewsItem
from bot.store import Store

MakePoller = Callable[..., NewsPoller]
NEWS = Path(__file__).resolve().parents[2] / "adapters" / "news"


async def _settle(condition: Callable[[], bool] = lambda: False, seconds: float = 0.3) -> None:
    """Wait until `condition` holds, or `seconds` of real time (what a wall clock would use)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def test_a_replay_clock_stamps_received_and_the_feed_state(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    clock = ReplayClock(NOW - timedelta(days=400))  # far from the wall clock on purpose
    url = server.feed("/rss", rss([{"title": "Bitcoin holds", "guid": "c1"}]))
    poller = make_poller(url, clock=clock, started_at=None)
    assert poller.started_at == clock.now()  # start-up, for staleness, is the clock's too
    result = await poller.poll(url)
    assert [item.received for item in result.items] == [clock.now()]
    assert result.items[0].published == clock.now()  # undated: it takes the time received
    state = store.feed_state(url)
    assert state is not None
    assert state["last_success"].replace(tzinfo=clock.now().tzinfo) == clock.now()


async def test_due_times_and_retries_come_from_the_clock_not_the_wall(
    server: FeedServer, make_poller: MakePoller
) -> None:
    clock = ReplayClock(NOW)
    busy = server.status("/busy", 503, {"Retry-After": "300"})
    ok = server.feed("/ok", rss([{"title": "Ether steady", "guid": "o1"}]), etag='"v1"')
    poller = make_poller(
        busy, ok, clock=clock, poll_interval=60, backoff_initial=60, backoff_max=600
    )
    task = asyncio.create_task(poller.run(lambda item: asyncio.sleep(0)))
    try:
        await _settle(lambda: server.hits("/busy") == 1 and server.hits("/ok") == 1)
        await _settle()  # real time passes; a wall-clock schedule would not wait 60 s anyway
        assert (server.hits("/busy"), server.hits("/ok")) == (1, 1)
        clock.advance_to(NOW + timedelta(seconds=60))
        await _settle(lambda: server.hits("/ok") == 2)
        # The healthy feed is due on its interval; the failing one waits out its Retry-After.
        assert (server.hits("/busy"), server.hits("/ok")) == (1, 2)
        clock.advance_to(NOW + timedelta(seconds=299))
        await _settle(lambda: server.hits("/busy") == 2, seconds=0.2)
        assert server.hits("/busy") == 1
        clock.advance_to(NOW + timedelta(seconds=300))
        await _settle(lambda: server.hits("/busy") == 2)
        assert server.hits("/busy") == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_retry_after_date_is_counted_from_the_clock(
    server: FeedServer, make_poller: MakePoller
) -> None:
    clock = ReplayClock(NOW)
    when = format_datetime(NOW + timedelta(seconds=240), usegmt=True)
    url = server.status("/busy", 429, {"Retry-After": when})
    result = await make_poller(url, clock=clock, backoff_max=600).poll(url)
    assert result.retry_in == 240  # on the wall clock that date is long past: 0 s


async def test_the_poller_commits_each_item_before_it_publishes_it(
    server: FeedServer, make_poller: MakePoller, store: Store, tmp_path: Path
) -> None:
    """Sources commit what they publish: a second connection already sees the item, raw entry
    and title key included, when the subscriber gets it."""
    url = server.feed("/rss", rss([{"title": "Solana upgrade ships", "guid": "w1"}]))
    poller = make_poller(url)
    reader = sa.create_engine(f"sqlite:///{tmp_path / 'news.sqlite'}")
    seen: list[tuple[object, ...]] = []

    async def publish(item: object) -> None:
        assert isinstance(item, NewsItem)
        with reader.connect() as connection:
            row = connection.execute(
                sa.text("select id, raw is not null, title_key from news_items where id = :id"),
                {"id": item.id},
            ).first()
        seen.append(tuple(row) if row is not None else ())

    task = asyncio.create_task(poller.run(publish))
    try:
        await _settle(lambda: bool(seen), seconds=5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        reader.dispose()
    assert seen == [("127.0.0.1#w1", 1, "solana upgrade ships")]


def test_the_news_adapter_has_no_command_line_of_its_own() -> None:
    """The click shells live in bot/commands; adapters/news is domain code only."""
    importers = []
    for path in sorted(NEWS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            ) + ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "click" for name in names):
                importers.append(path.name)
    assert importers == []
    assert not (NEWS / "cli.py").exists()
