"""News intake benchmark: how fast feeds are parsed, and how soon a new item reaches the bus.

Measures, on this machine, with everything served from an aiohttp server on 127.0.0.1:
1. parse: items/s through `parse_feed` (feedparser + HTML cleaning) for large RSS 2.0 and Atom
   documents (no network, no store);
2. ingest: items/s through `NewsPoller.fetch_once` for the same documents (HTTP, parse, ids,
   symbol tagging, de-duplication, SQLite commit of every item with its raw entry), and for a
   re-poll of the unchanged feed with no ETag (every entry checked against the store, none new);
3. latency: seconds from an item being added to a served feed to its `NewsItem` reaching
   `publish` in a running poller, for several poll intervals (stated beside each figure). An
   item waits for the next poll, so the mean is about half the interval plus the poll's own cost.

It measures and prints (markdown for bench/RESULTS.md); it decides nothing.

    python bench/news_ingest.py                # the full run (about a minute and a half)
    python bench/news_ingest.py --quick        # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from adapters.news.parse import parse_feed  # noqa: E402
from adapters.news.poller import NewsPoller  # noqa: E402
from bot.clock import LiveClock  # noqa: E402
from bot.config import FeedConfig, NewsConfig, Settings  # noqa: E402
from bot.events import NewsItem  # noqa: E402
from bot.log import setup_logging  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.symbols import SymbolTable  # noqa: E402

WORDS = (
    "bitcoin", "ether", "solana", "markets", "rally", "slump", "fed", "rates", "inflows",
    "outflows", "exchange", "listing", "regulator", "approves", "rejects", "etf", "miners",
    "hashrate", "stablecoin", "treasury", "yields", "traders", "options", "futures",
    "liquidation", "record", "high", "low", "surge", "plunge", "steady", "outlook", "quarterly",
    "earnings",
)  # fmt: skip
BASE = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize()


def make_rss(count: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bench'
        "</title><link>https://bench.example.com/</link><description>d</description>"
    ]
    for n in range(count):
        when = format_datetime(BASE - timedelta(seconds=n * 30), usegmt=True)
        body = escape(f"<p>{_text(rng, 40)}. <b>{_text(rng, 12)}</b></p>")
        parts.append(
            f"<item><title>{escape(_text(rng, 10))} #{n}</title>"
            f"<link>https://bench.example.com/news/{n}?utm_source=rss</link>"
            f'<guid isPermaLink="false">bench-{n}</guid><pubDate>{when}</pubDate>'
            f"<description>{body}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def make_atom(count: int, seed: int = 2) -> bytes:
    rng = random.Random(seed)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Bench</title><id>tag:bench.example.com,2024:feed</id>"
        "<updated>2024-05-06T12:00:00Z</updated>"
    ]
    for n in range(count):
        when = (BASE - timedelta(seconds=n * 30)).isoformat().replace("+00:00", "Z")
        body = escape(f"<p>{_text(rng, 40)}. <b>{_text(rng, 12)}</b></p>")
        parts.append(
            f"<entry><title>{escape(_text(rng, 10))} #{n}</title>"
            f"<id>tag:bench.example.com,2024:{n}</id>"
            f'<link rel="alternate" href="https://bench.example.com/a/{n}"/>'
            f'<updated>{when}</updated><summary type="html">{body}</summary></entry>'
        )
    parts.append("</feed>")
    return "".join(parts).encode()


class Server:
    """Serves `bodies[path]` (bytes or a callable returning bytes) on 127.0.0.1."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes | Callable[[], bytes]] = {}
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = self.bodies[request.path]
        data = body() if callable(body) else body
        return web.Response(body=data, content_type="application/rss+xml")

    async def __aenter__(self) -> Server:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def _poller(store: Store, urls: list[str], interval: float = 60.0) -> NewsPoller:
    config = NewsConfig(
        feeds=tuple(FeedConfig(url=url) for url in urls),
        poll_interval=interval,
        timeout=120.0,
        jitter=0.0,
        max_bytes=200_000_000,
        backoff_initial=interval,
        backoff_max=max(interval, 1.0),
    )
    return NewsPoller(config, store, SymbolTable.from_settings(Settings()), clock=LiveClock())


def bench_parse(docs: dict[str, bytes], repeats: int) -> list[tuple[str, int, int, float]]:
    rows = []
    for name, body in docs.items():
        best = float("inf")
        count = 0
        for _ in range(repeats):
            started = time.perf_counter()
            parsed = parse_feed(body, url="https://bench.example.com/feed")
            best = min(best, time.perf_counter() - started)
            count = len(parsed.entries)
        rows.append((name, count, len(body), count / best))
    return rows


async def bench_ingest(
    docs: dict[str, bytes], repeats: int
) -> list[tuple[str, int, float, float, float]]:
    """Per document: items/s for a first poll (all new), a re-poll whose bytes changed but whose
    entries are all known (full parse + store look-ups), and a re-poll of identical bytes."""
    rows = []
    async with Server() as server:
        for name, body in docs.items():
            path = f"/{name.split()[0].lower()}"
            version = [0]

            def serve(body: bytes = body, version: list[int] = version) -> bytes:
                return body + f"<!-- {version[0]} -->".encode()

            server.bodies[path] = serve
            url = server.base + path
            best_new = best_known = best_same = float("inf")
            count = 0
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as folder:
                    store = Store(f"sqlite:///{folder}/bench.sqlite")
                    poller = _poller(store, [url])
                    started = time.perf_counter()
                    report = await poller.fetch_once()
                    best_new = min(best_new, time.perf_counter() - started)
                    count = len(report.items)
                    assert not report.failures, report.failures[0].error
                    version[0] += 1
                    started = time.perf_counter()
                    known = await poller.fetch_once()
                    best_known = min(best_known, time.perf_counter() - started)
                    assert not known.items and not known.results[0].not_modified
                    started = time.perf_counter()
                    same = await poller.fetch_once()
                    best_same = min(best_same, time.perf_counter() - started)
                    assert same.results[0].not_modified
                    store.close()
            rows.append((name, count, count / best_new, count / best_known, count / best_same))
    return rows


async def bench_latency(interval: float, samples: int, base_items: int) -> dict[str, float]:
    """Add `samples` items one at a time at random moments; time each until it is published."""
    rng = random.Random(7)
    feed: list[tuple[int, str]] = []  # (n, pubDate)
    added: dict[str, float] = {}
    arrived: dict[str, float] = {}
    clock = time.perf_counter

    def render() -> bytes:
        parts = [
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>Latency</title>"
        ]
        for n, when in reversed(feed[-(base_items + samples) :]):
            parts.append(
                f'<item><title>Bitcoin latency probe {n}</title><guid isPermaLink="false">'
                f"lat-{n}</guid><pubDate>{when}</pubDate><description>Probe {n} for the "
                f"latency benchmark, about ether and markets.</description></item>"
            )
        parts.append("</channel></rss>")
        return "".join(parts).encode()

    def add(n: int) -> None:
        feed.append((n, format_datetime(datetime.now(UTC), usegmt=True)))
        added[f"127.0.0.1#lat-{n}"] = clock()

    for n in range(base_items):
        add(100_000 + n)  # distinct titles: "probe -1" and "probe 1" are one story to dedup
    added.clear()

    async def publish(item: object) -> None:
        assert isinstance(item, NewsItem)
        arrived.setdefault(item.id, clock())

    poll_costs: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{folder}/latency.sqlite")
        async with Server() as server:
            server.bodies["/live"] = render
            poller = _poller(store, [server.base + "/live"], interval=interval)
            original_poll = poller.poll

            async def timed_poll(*args: object, **kwargs: object) -> object:
                started = clock()
                result = await original_poll(*args, **kwargs)  # type: ignore[arg-type]
                poll_costs.append(clock() - started)
                return result

            poller.poll = timed_poll  # type: ignore[method-assign,assignment]
            task = asyncio.create_task(poller.run(publish))
            await asyncio.sleep(interval * 1.5)  # the start-up backlog is published and settles
            arrived.clear()
            for n in range(samples):
                await asyncio.sleep(rng.uniform(0.3, 1.7) * interval)
                add(n)
            deadline = clock() + interval * 3 + 5
            while len(arrived) < samples and clock() < deadline:
                await asyncio.sleep(interval / 20)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        store.close()
    delays = sorted(arrived[key] - added[key] for key in added if key in arrived)
    if len(delays) < samples:
        raise SystemExit(f"only {len(delays)} of {samples} probe items arrived")
    return {
        "interval": interval,
        "samples": len(delays),
        "mean": statistics.fmean(delays),
        "p50": statistics.median(delays),
        "p95": delays[min(len(delays) - 1, round(0.95 * (len(delays) - 1)))],
        "max": delays[-1],
        "poll_cost_ms": 1000 * statistics.median(poll_costs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000, help="entries per large feed")
    parser.add_argument("--repeats", type=int, default=3, help="best of N for throughput")
    parser.add_argument("--samples", type=int, default=20, help="probe items per interval")
    parser.add_argument(
        "--intervals", default="2,0.5,0.1", help="poll intervals in seconds, comma-separated"
    )
    parser.add_argument("--base-items", type=int, default=50, help="items already in the feed")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.items, args.repeats, args.samples, args.intervals = 500, 1, 5, "0.2"
    intervals = [float(x) for x in args.intervals.split(",")]
    setup_logging("warning")

    docs = {
        f"RSS 2.0, {args.items} items": make_rss(args.items),
        f"Atom, {args.items} items": make_atom(args.items),
    }
    started = time.perf_counter()
    parse_rows = bench_parse(docs, args.repeats)
    ingest_rows = asyncio.run(bench_ingest(docs, args.repeats))
    latency_rows = [
        asyncio.run(bench_latency(interval, args.samples, args.base_items))
        for interval in intervals
    ]
    total = time.perf_counter() - started

    print(
        f"- machine: {platform.processor() or platform.machine()}, {_cpus()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(f"- date: {datetime.now(UTC):%Y-%m-%d}")
    command = " ".join(["python bench/news_ingest.py", *sys.argv[1:]])
    print(f"- command: `{command}`")
    print(f"- run time: {total:.0f} s; throughput is the best of {args.repeats}\n")
    print(
        "| feed | size | parse only | first poll: fetch+parse+store, all new "
        "| re-poll, changed bytes, all known | re-poll, identical bytes |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for (name, _count, size, parse_rate), (_, _, new_rate, known_rate, same_rate) in zip(
        parse_rows, ingest_rows, strict=True
    ):
        print(
            f"| {name} | {size / 1e6:.1f} MB | {parse_rate:,.0f} items/s | {new_rate:,.0f} items/s "
            f"| {known_rate:,.0f} items/s | {same_rate:,.0f} items/s (not parsed) |"
        )
    print()
    print(
        f"Latency from an item appearing on the local server to its NewsItem being published "
        f"({args.samples} probe items per interval, added at random moments, feed of "
        f"{args.base_items}+ items, no jitter):\n"
    )
    print("| poll interval | mean | p50 | p95 | max | one poll (median) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in latency_rows:
        print(
            f"| {row['interval']:g} s | {row['mean']:.3f} s | {row['p50']:.3f} s "
            f"| {row['p95']:.3f} s | {row['max']:.3f} s | {row['poll_cost_ms']:.1f} ms |"
        )


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
