"""The poller's promises: polite, deduplicated, stale-aware, isolated per feed, never crashing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from newsfeed_server import NOW, START, Clock, FeedServer, fixture_bytes, rss
from structlog.testing import capture_logs

from adapters.news.poller import NewsPoller, backoff_delay
from bot.config import FeedConfig
from bot.events import NewsItem
from bot.store import Store

MakePoller = Callable[..., NewsPoller]


def _rows(store: Store) -> list[Any]:
    table = store._t["news"]
    with store.engine.connect() as connection:
        return list(connection.execute(sa.select(table).order_by(table.c.received, table.c.id)))


async def _run_for(poller: NewsPoller, seconds: float, published: list[NewsItem]) -> None:
    async def publish(item: object) -> None:
        assert isinstance(item, NewsItem)
        published.append(item)

    task = asyncio.create_task(poller.run(publish))
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- conditional GET, feed state -----------------------------------------------------------


async def test_etag_is_sent_and_a_304_yields_nothing(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    url = server.feed("/rss", fixture_bytes("rss2.xml"), etag='"v1"')
    poller = make_poller(url)
    first = await poller.poll(url)
    assert len(first.items) == 3
    second = await poller.poll(url)
    assert second.not_modified and second.items == [] and second.ok
    assert "If-None-Match" not in server.requests["/rss"][0]
    assert server.requests["/rss"][1]["If-None-Match"] == '"v1"'
    state = store.feed_state(url)
    assert state is not None
    assert state["etag"] == '"v1"' and state["items_seen"] == 3 and state["error_count"] == 0
    assert state["last_success"] == NOW
    # A new poller on the same store (a restart) asks conditionally straight away.
    await make_poller(url).poll(url)
    assert server.requests["/rss"][2]["If-None-Match"] == '"v1"'


async def test_last_modified_is_sent_back(server: FeedServer, make_poller: MakePoller) -> None:
    stamp = "Mon, 06 May 2024 10:20:00 GMT"
    url = server.feed("/rss", fixture_bytes("rss2.xml"), last_modified=stamp)
    poller = make_poller(url)
    await poller.poll(url)
    result = await poller.poll(url)
    assert server.requests["/rss"][1]["If-Modified-Since"] == stamp
    assert result.not_modified


async def test_failure_is_counted_in_the_feed_state(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    url = server.status("/down", 503)
    poller = make_poller(url)
    await poller.poll(url)
    await poller.poll(url)
    state = store.feed_state(url)
    assert state is not None
    assert state["error_count"] == 2 and state["last_error"] == "HTTP 503 Service Unavailable"


def test_backoff_doubles_is_capped_and_honours_retry_after() -> None:
    delays = [
        backoff_delay(n, interval=10, initial=30, maximum=600, retry_after=None)
        for n in range(1, 7)
    ]
    assert delays == [30, 60, 120, 240, 480, 600]
    assert backoff_delay(1, interval=120, initial=30, maximum=600, retry_after=None) == 120
    assert backoff_delay(1, interval=10, initial=30, maximum=600, retry_after=300) == 300
    assert backoff_delay(1, interval=10, initial=30, maximum=600, retry_after=86400) == 600


# -- de-duplication ------------------------------------------------------------------------


async def test_each_item_once_across_polls(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    items = [{"title": "Bitcoin steady", "guid": "g1", "published": NOW - timedelta(minutes=5)}]
    url = server.feed("/rss", lambda: rss(items))
    poller = make_poller(url)
    assert [i.title for i in (await poller.poll(url)).items] == ["Bitcoin steady"]
    again = await poller.poll(url)
    assert again.items == [] and again.not_modified  # same bytes: not even parsed
    items.insert(0, {"title": "Ether jumps", "guid": "g2", "published": NOW - timedelta(minutes=1)})
    assert [i.title for i in (await poller.poll(url)).items] == ["Ether jumps"]
    assert store.count("news") == 2


async def test_same_story_from_two_outlets_is_one_item(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    when = NOW - timedelta(minutes=3)
    a = server.feed(
        "/a", rss([{"title": "SEC approves spot Ether ETFs", "guid": "a-1", "published": when}])
    )
    b = server.feed(
        "/b",
        rss(
            [
                {
                    "title": "SEC Approves Spot Ether ETFs!",
                    "link": "https://b.example/x",
                    "published": when,
                }
            ]
        ),
    )
    report = await make_poller(a, b).fetch_once()
    assert len(report.items) == 1
    assert sum(result.known for result in report.results) == 1
    row = _rows(store)[0]
    assert row.title_key == "sec approves spot ether etfs"


async def test_title_dedup_only_within_its_window(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    old = NewsItem(id="old-1", source="x", title="Market wrap", received=NOW - timedelta(days=3))
    store.record_news(old, title_key="market wrap")
    store.flush()
    url = server.feed("/rss", rss([{"title": "Market Wrap", "guid": "w-9", "published": NOW}]))
    assert len((await make_poller(url).poll(url)).items) == 1  # a day's window: not the same story
    url2 = server.feed("/rss2", rss([{"title": "Market wrap.", "guid": "w-10", "published": NOW}]))
    assert (await make_poller(url2).poll(url2)).items == []  # but today's is


async def test_the_same_story_claimed_by_two_feeds_at_once_is_published_once(
    server: FeedServer, make_poller: MakePoller
) -> None:
    body = rss([{"title": "Tether mints $1bn", "guid": "https://t.example/1", "published": NOW}])
    urls = [server.feed(f"/f{n}", body, delay=0.02) for n in range(5)]
    published: list[NewsItem] = []
    poller = make_poller(*urls)
    await _run_for(poller, 0.4, published)
    assert [item.id for item in published] == ["https://t.example/1"]


# -- staleness -----------------------------------------------------------------------------


async def test_stale_before_start_up_or_older_than_max_age(
    server: FeedServer, make_poller: MakePoller
) -> None:
    items = [
        {"title": "Before start", "guid": "s1", "published": START - timedelta(minutes=1)},
        {
            "title": "After start but too old",
            "guid": "s2",
            "published": START + timedelta(minutes=5),
        },
        {"title": "Fresh", "guid": "s3", "published": NOW - timedelta(minutes=10)},
    ]
    url = server.feed("/rss", rss(items))
    result = await make_poller(url, max_age="1h").poll(url)
    assert {item.title: item.stale for item in result.items} == {
        "Before start": True,
        "After start but too old": True,
        "Fresh": False,
    }


async def test_undated_items_are_stale_only_when_already_there_at_start_up(
    server: FeedServer, make_poller: MakePoller
) -> None:
    items: list[dict[str, Any]] = [{"title": "Undated one", "link": "https://u.example/1"}]
    url = server.feed("/rss", lambda: rss(items))
    clock = Clock()
    poller = make_poller(url, clock=clock)
    first = (await poller.poll(url)).items
    assert [(i.undated, i.stale, i.published) for i in first] == [(True, True, NOW)]
    items.append({"title": "Undated two", "link": "https://u.example/2"})
    clock.advance(60)
    second = (await poller.poll(url)).items
    assert [(i.title, i.undated, i.stale) for i in second] == [("Undated two", True, False)]
    assert second[0].published == second[0].received == NOW + timedelta(seconds=60)


# -- cleaning, tagging, raw entries --------------------------------------------------------


async def test_body_capped_title_whole_raw_kept(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    title = "A very long headline about bitcoin " + "and more words " * 30
    body = "&lt;p&gt;" + "Ether news. " * 100 + "&lt;/p&gt;"
    url = server.feed(
        "/rss", rss([{"title": title, "guid": "long-1", "published": NOW, "body": body}])
    )
    item = (await make_poller(url, max_body_chars=200).poll(url)).items[0]
    assert item.title == title.strip()
    assert len(item.body) <= 200 and item.body.endswith("…") and "<p>" not in item.body
    assert item.symbols == ("BTCUSDT", "ETHUSDT")
    raw = json.loads(_rows(store)[0].raw)
    assert raw["summary"].startswith("<p>Ether news.")  # the entry as the feed gave it
    assert raw["id"] == "long-1"


async def test_look_only_records_nothing(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    url = server.feed("/rss", fixture_bytes("rss2.xml"), etag='"v1"')
    poller = make_poller(url)
    first = await poller.fetch_once(record=False)
    assert len(first.items) == 3
    assert store.count("news") == 0 and store.feed_state(url) is None
    again = await make_poller(url).fetch_once(record=False)
    assert len(again.items) == 3


# -- isolation, politeness, robustness in the running poller -----------------------------------


async def test_run_publishes_new_items_as_they_appear(
    server: FeedServer, make_poller: MakePoller
) -> None:
    clock = Clock()
    items = [{"title": "First", "guid": "r1", "published": NOW - timedelta(minutes=1)}]
    url = server.feed("/rss", lambda: rss(list(reversed(items))))
    poller = make_poller(url, clock=clock)
    published: list[NewsItem] = []

    async def publish(item: object) -> None:
        assert isinstance(item, NewsItem)
        published.append(item)

    task = asyncio.create_task(poller.run(publish))
    try:
        await _wait_until(lambda: len(published) == 1)
        for n in (2, 3):
            items.append({"title": f"Item {n}", "guid": f"r{n}", "published": clock()})
        await _wait_until(lambda: len(published) == 3)
        await asyncio.sleep(0.2)  # several more polls: nothing published twice
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [item.title for item in published] == ["First", "Item 2", "Item 3"]
    assert server.hits("/rss") >= 4


async def test_a_slow_feed_does_not_delay_the_others(
    server: FeedServer, make_poller: MakePoller
) -> None:
    slow = server.hang("/slow", 3)
    fast = server.feed("/fast", fixture_bytes("rss2.xml"))
    other = server.feed("/atom", fixture_bytes("atom.xml"))
    poller = make_poller(slow, fast, other, timeout=2.0)
    published: list[NewsItem] = []
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def publish(item: object) -> None:
        assert isinstance(item, NewsItem)
        published.append(item)

    task = asyncio.create_task(poller.run(publish))
    try:
        await _wait_until(lambda: len(published) == 5, timeout=1.5)
        assert loop.time() - started < 1.0
        assert server.active["/slow"] == 1  # still hanging while the others were published
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_failing_feed_backs_off_while_healthy_one_keeps_its_pace(
    server: FeedServer, make_poller: MakePoller
) -> None:
    failing = server.status("/fail", 500)
    healthy = server.feed("/ok", fixture_bytes("rss2.xml"), etag='"x"')
    poller = make_poller(
        failing, healthy, poll_interval=0.05, backoff_initial=0.05, backoff_max=0.4
    )
    await _run_for(poller, 1.2, [])
    # Failures at 0, 0.05, 0.15, 0.35, 0.75, 1.15 s: six tries, where the healthy feed had ~24.
    assert 3 <= server.hits("/fail") <= 7
    assert server.hits("/ok") >= 10


async def test_retry_after_is_honoured(server: FeedServer, make_poller: MakePoller) -> None:
    url = server.status("/busy", 429, {"Retry-After": "1"})
    await _run_for(make_poller(url, backoff_max=2.0), 0.8, [])
    assert server.hits("/busy") == 1


async def test_per_host_limit_and_waiting_is_not_a_timeout(
    server: FeedServer, make_poller: MakePoller
) -> None:
    urls = [server.feed(f"/h{n}", fixture_bytes("rss2.xml"), delay=0.15) for n in range(6)]
    poller = make_poller(*urls, per_host_concurrency=2, timeout=0.4)
    report = await poller.fetch_once()
    assert server.peak_total == 2
    assert not report.failures  # three rounds of 0.15 s queueing, each fetch well inside 0.4 s


async def test_a_crash_inside_a_poll_is_contained_and_loses_nothing(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    url = server.feed("/rss", fixture_bytes("rss2.xml"))
    broken = True

    def sink(items: object) -> None:
        if broken:
            raise OSError(28, "No space left on device")

    poller = make_poller(url, sink=sink)
    with capture_logs() as logs:
        result = await poller.poll(url)
    assert result.error == "internal error: OSError: [Errno 28] No space left on device"
    assert any(entry["event"] == "news feed poll crashed" for entry in logs)
    assert store.count("news") == 0  # nothing claimed, so nothing is lost
    broken = False
    assert len((await poller.poll(url)).items) == 3


async def test_publish_failure_does_not_stop_the_poller(
    server: FeedServer, make_poller: MakePoller, store: Store
) -> None:
    url = server.feed("/rss", fixture_bytes("rss2.xml"))
    calls: list[str] = []

    async def publish(item: object) -> None:
        assert isinstance(item, NewsItem)
        calls.append(item.id)
        if len(calls) == 1:
            raise RuntimeError("bus closed")

    poller = make_poller(url)
    task = asyncio.create_task(poller.run(publish))
    try:
        await _wait_until(lambda: len(calls) == 3)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert store.count("news") == 3  # recorded before publishing: the engine can still retry


async def test_no_feeds_waits_quietly(make_poller: MakePoller) -> None:
    poller = make_poller()
    with capture_logs() as logs, pytest.raises(TimeoutError):
        await asyncio.wait_for(poller.run(lambda item: asyncio.sleep(0)), 0.1)
    assert logs[0]["event"].startswith("no news feeds configured")


async def test_disabled_feeds_are_not_polled(server: FeedServer, make_poller: MakePoller) -> None:
    on = server.feed("/on", fixture_bytes("rss2.xml"))
    off = server.feed("/off", fixture_bytes("atom.xml"))
    poller = make_poller(FeedConfig(url=on, name="wire"), FeedConfig(url=off, enabled=False))
    report = await poller.fetch_once()
    assert [result.url for result in report.results] == [on]
    assert {item.source for item in report.items} == {"wire"}
    assert server.hits("/off") == 0


async def test_an_item_first_seen_after_start_up_is_fresh_despite_an_earlier_date(
    server: FeedServer, make_poller: MakePoller
) -> None:
    """Feeds list items late (CDN caches, second-precision dates): seen in a later poll, the item
    appeared while the poller was listening, so only max_age can make it stale."""
    items: list[dict[str, Any]] = [{"title": "Backlog", "guid": "b0", "published": START}]
    url = server.feed("/rss", lambda: rss(list(reversed(items))))
    clock = Clock(START + timedelta(seconds=30))
    poller = make_poller(url, clock=clock, started_at=START + timedelta(seconds=1), max_age="1h")
    assert [(i.title, i.stale) for i in (await poller.poll(url)).items] == [("Backlog", True)]
    items.append({"title": "Listed late", "guid": "b1", "published": START})
    items.append(
        {"title": "Listed very late", "guid": "b2", "published": START - timedelta(hours=2)}
    )
    clock.advance(60)
    assert [(i.title, i.stale) for i in (await poller.poll(url)).items] == [
        ("Listed very late", True),
        ("Listed late", False),
    ]


async def test_the_same_bytes_again_are_not_parsed_again(
    server: FeedServer, make_poller: MakePoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adapters.news.poller as poller_module

    parses: list[int] = []
    real_parse = poller_module.parse_feed

    def counting_parse(*args: Any, **kwargs: Any) -> Any:
        parses.append(1)
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(poller_module, "parse_feed", counting_parse)
    items = [{"title": "Ether holds", "guid": "h1", "published": NOW}]
    url = server.feed("/rss", lambda: rss(items))  # no ETag, no Last-Modified
    poller = make_poller(url)
    await poller.poll(url)
    unchanged = await poller.poll(url)
    assert unchanged.not_modified and unchanged.ok and len(parses) == 1
    items.append({"title": "Bitcoin moves", "guid": "h2", "published": NOW})
    assert [i.title for i in (await poller.poll(url)).items] == ["Bitcoin moves"]
    assert len(parses) == 2


async def test_a_feed_may_set_its_own_interval_and_timeout(
    server: FeedServer, make_poller: MakePoller
) -> None:
    hurried = server.hang("/hurried", 2)
    often = server.feed("/often", fixture_bytes("rss2.xml"), etag='"o"')
    rarely = server.feed("/rarely", fixture_bytes("atom.xml"), etag='"r"')
    poller = make_poller(
        FeedConfig(url=hurried, timeout="150ms", interval="10s"),
        FeedConfig(url=often, interval="50ms"),
        FeedConfig(url=rarely, interval="10s"),
        timeout=5.0,
        poll_interval=1.0,
    )
    with capture_logs() as logs:
        await _run_for(poller, 0.6, [])
    failed = [entry for entry in logs if entry["event"] == "news feed failed"]
    assert [entry["reason"] for entry in failed] == ["timed out after 0.15s"]
    assert server.hits("/rarely") == 1
    assert server.hits("/often") >= 5
