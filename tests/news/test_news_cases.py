"""Every kind of feed a server can hand out, over real HTTP on 127.0.0.1.

Each case yields exactly its valid new items, and anything wrong is a clear error (or warning)
that names the feed's URL, in the poll result and in the log. Nothing crashes the poller: the
last test serves all the cases at once from one poller and checks they do not disturb each other.
"""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from newsfeed_server import NOW, RSS, FeedServer, fixture_bytes
from structlog.testing import capture_logs

from adapters.news.poller import NewsPoller, PollResult
from bot.store import Store

RSS2_TITLES = [
    "Fed holds rates steady, signals patience",
    "Ethereum developers set date for next network upgrade",
    "Bitcoin rallies past $70,000 as ETF inflows surge",
]
TIMEOUT = 0.3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gzip_bomb() -> Callable[[web.Request], Any]:
    payload = gzip.compress(
        b'<?xml version="1.0"?><rss version="2.0"><channel>' + b" " * 20_000_000
    )

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=payload, headers={"Content-Type": RSS, "Content-Encoding": "gzip"})

    return handler


@dataclass
class Case:
    setup: Callable[[FeedServer], str]
    titles: list[str]
    error: str = ""
    warning: str = ""
    invalid: int = 0
    not_modified: bool = False


CASES: dict[str, Case] = {
    "rss 2.0": Case(lambda s: s.feed("/rss", fixture_bytes("rss2.xml")), RSS2_TITLES),
    "atom": Case(
        lambda s: s.feed("/atom", fixture_bytes("atom.xml"), content_type="application/atom+xml"),
        ["Ether options open interest hits record", "Solana outage halts block production"],
    ),
    "gzip": Case(lambda s: s.feed("/gz", fixture_bytes("rss2.xml"), compress=True), RSS2_TITLES),
    "broken xml": Case(
        lambda s: s.feed("/broken", fixture_bytes("broken.xml")),
        ["Binance lists new perpetual contracts", "XRP case: court sets hearing date"],
        warning="not well-formed XML at line 17, column 0: no element found",
        invalid=1,
    ),
    "html page": Case(
        lambda s: s.feed("/page", fixture_bytes("page.html"), content_type="text/html"),
        [],
        error="not an RSS or Atom feed: got an HTML page (text/html); the page links a feed at "
        "http://127.0.0.1:",
    ),
    "empty body": Case(lambda s: s.feed("/empty", b""), [], error="empty response body"),
    "304": Case(lambda s: s.status("/304", 304), [], not_modified=True),
    "500": Case(lambda s: s.status("/500", 500), [], error="HTTP 500 Internal Server Error"),
    "404": Case(lambda s: s.status("/404", 404), [], error="HTTP 404 Not Found"),
    "429": Case(
        lambda s: s.status("/429", 429, {"Retry-After": "120"}),
        [],
        error="HTTP 429 Too Many Requests (Retry-After 120s)",
    ),
    "timeout": Case(lambda s: s.hang("/hang", 3), [], error=f"timed out after {TIMEOUT:g}s"),
    "endless slow body": Case(
        lambda s: s.trickle("/trickle", 0.02, 3), [], error=f"timed out after {TIMEOUT:g}s"
    ),
    "20 MB declared": Case(
        lambda s: s.huge("/huge", 20_000_000, declare_length=True),
        [],
        error="response is 20000000 bytes, more than max_bytes=5000000",
    ),
    "20 MB chunked": Case(
        lambda s: s.huge("/huge-chunked", 20_000_000, declare_length=False),
        [],
        error="response is larger than max_bytes=5000000 (stopped reading)",
    ),
    "gzip bomb": Case(
        lambda s: s.route("/bomb", _gzip_bomb()),
        [],
        error="response is larger than max_bytes=5000000 (stopped reading)",
    ),
    "html and script in titles": Case(
        lambda s: s.feed("/markup", fixture_bytes("html_titles.xml")),
        [
            "Bitcoin jumps & holds gains",
            "S&P 500 < 5,000 as AT&T and BTC<ETH fees diverge",
            "Multi-line title with tabs and zero-width",
            "Ether — steady",
        ],
    ),
    "duplicated guids": Case(
        lambda s: s.feed("/dups", fixture_bytes("dup_guids.xml")),
        ["Coinbase reports quarterly profit", "Kraken expands to new markets"],
    ),
    "no dates": Case(
        lambda s: s.feed("/undated", fixture_bytes("undated.xml")),
        # Equal (received) times: oldest first is the feed's order reversed.
        [
            "Stablecoin supply grows for a third month",
            "Miners sell bitcoin reserves ahead of halving",
        ],
    ),
    "latin-1 prolog": Case(
        lambda s: s.feed("/fr", fixture_bytes("latin1.xml"), content_type="application/rss+xml"),
        ["Marchés : le bitcoin progresse, l'éther recule à Zürich"],
    ),
    "windows-1251 by header": Case(
        lambda s: s.feed(
            "/ru", fixture_bytes("cp1251.xml"), content_type="text/xml; charset=windows-1251"
        ),
        ["Биткоин растёт после решения регулятора", "Эфир падает на фоне новостей о регулировании"],
    ),
    "windows-1251 undeclared": Case(
        lambda s: s.feed("/ru2", fixture_bytes("cp1251.xml"), content_type="application/rss+xml"),
        ["Биткоин растёт после решения регулятора", "Эфир падает на фоне новостей о регулировании"],
    ),
    "invalid entries": Case(
        lambda s: s.feed("/invalid", fixture_bytes("invalid_entries.xml")),
        [
            "Valid headline about ether staking",
            "No title, but a body: Bitcoin hashrate reaches a new high.",
        ],
        invalid=2,
    ),
    "moved permanently": Case(
        lambda s: (s.feed("/new-home", fixture_bytes("rss2.xml")), s.redirect("/old", "/new-home"))[
            1
        ],
        RSS2_TITLES,
    ),
    "redirect loop": Case(
        lambda s: (s.redirect("/loop-a", "/loop-b"), s.redirect("/loop-b", "/loop-a"))[0],
        [],
        error="more than 5 redirects",
    ),
    "connection refused": Case(
        lambda s: f"http://127.0.0.1:{_free_port()}/feed", [], error="cannot connect"
    ),
}


def _events(logs: list[dict[str, Any]], event: str, url: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event and entry.get("url") == url]


def _check(
    case: Case, url: str, result: PollResult, logs: list[dict[str, Any]], titles: bool = True
) -> None:
    if titles:
        assert [item.title for item in result.items] == case.titles
    assert result.url == url
    if case.error:
        assert result.error.startswith(case.error), result.error
        failed = _events(logs, "news feed failed", url)
        assert len(failed) == 1 and failed[0]["reason"] == result.error
        assert failed[0]["log_level"] == "warning"
        assert result.retry_in is not None and result.retry_in > 0
    else:
        assert result.ok, result.error
        assert not _events(logs, "news feed failed", url)
    if case.warning:
        assert result.warning.startswith(case.warning)
        assert _events(logs, "news feed is damaged", url)
    if case.invalid:
        assert len(result.invalid) == case.invalid
        logged = _events(logs, "news feed has invalid entries", url)
        assert logged and logged[0]["count"] == case.invalid
    else:
        assert not result.invalid
    assert result.not_modified is case.not_modified


@pytest.mark.parametrize("name", list(CASES))
async def test_feed_case(
    name: str, server: FeedServer, make_poller: Callable[..., NewsPoller]
) -> None:
    case = CASES[name]
    url = case.setup(server)
    poller = make_poller(url, timeout=TIMEOUT)
    with capture_logs() as logs:
        report = await poller.fetch_once()
    assert len(report.results) == 1
    _check(case, url, report.results[0], logs)
    for item in report.results[0].items:
        assert item.received == NOW
        assert item.title and "<script" not in item.title and "\n" not in item.title


async def test_all_cases_at_once_from_one_poller(
    server: FeedServer, make_poller: Callable[..., NewsPoller], store: Store
) -> None:
    urls = {name: case.setup(server) for name, case in CASES.items()}
    poller = make_poller(*urls.values(), timeout=TIMEOUT, title_dedup_window=0)
    started = time.perf_counter()
    with capture_logs() as logs:
        report = await poller.fetch_once()
    elapsed = time.perf_counter() - started
    by_url = {result.url: result for result in report.results}
    for name, case in CASES.items():
        _check(case, urls[name], by_url[urls[name]], logs, titles=False)
    # Three feeds serve the same rss2.xml from one host: its items come once, not three times.
    expected = {title for case in CASES.values() for title in case.titles}
    assert sorted(item.title for item in report.items) == sorted(expected)
    # Feeds are fetched side by side: the slow ones cost one timeout, not one each.
    assert elapsed < TIMEOUT * 6, elapsed
    assert {r.url for r in report.failures} == {urls[n] for n, c in CASES.items() if c.error}
    # What was valid is in the store, each id once.
    assert store.count("news") == len({item.id for item in report.items})


async def test_item_fields_from_rss(
    server: FeedServer, make_poller: Callable[..., NewsPoller]
) -> None:
    url = server.feed("/rss", fixture_bytes("rss2.xml"))
    report = await make_poller(url).fetch_once()
    btc = report.items[-1]
    assert btc.id == "127.0.0.1#wire-1001"
    assert btc.source == "127.0.0.1"
    assert btc.link == "https://wire.example.com/news/bitcoin-rallies"  # utm_* removed
    assert btc.body == "Spot bitcoin ETFs took in $400m on Friday, the most in a month."
    assert btc.published == datetime(2024, 5, 6, 10, 15, tzinfo=UTC)
    assert btc.symbols == ("BTCUSDT",)
    assert report.items[1].symbols == ("ETHUSDT",)
    assert report.items[0].symbols == ()
    assert not any(item.stale or item.undated for item in report.items)


async def test_request_is_polite(
    server: FeedServer, make_poller: Callable[..., NewsPoller]
) -> None:
    url = server.feed("/rss", fixture_bytes("rss2.xml"), compress=True)
    poller = make_poller(url, user_agent="lorabot-test/1.0 (ops@example.com)")
    await poller.fetch_once()
    headers = server.requests["/rss"][0]
    assert headers["User-Agent"] == "lorabot-test/1.0 (ops@example.com)"
    assert "gzip" in headers["Accept-Encoding"]
    assert "application/rss+xml" in headers["Accept"]
