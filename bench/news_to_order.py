"""News to order latency in a running paper daemon, the embedded default model in the path.

A paper daemon (`bot.daemon.run_daemon`, in this process so both ends read one `perf_counter`)
trades BTCUSDT on prices from the local Bybit simulator (adapters/bybit/sim). The benchmark hands
it timed headlines, alternately bullish and bearish (each distinct, so none is answered from the
cache), and reads the daemon's own measurement (bot/latency.py, the one `/metrics` exports): from
the `NewsItem`'s dispatch on the bus to the moment before the broker is asked to place the order.
The strategy keeps only the newest headline in the vote (`half_life = 50ms`, "share" vote: the
headline before, 200 ms older, weighs 1/16), so every steady headline flips the target and places
one order. Within a burst (one direction) only the first moves the target: a burst is measured to
each headline's signal, which is the part a batching wait can change.

Scenarios, each run with `[model] max_wait` at the values given (`--max-wait`):
- steady: one headline every 200-400 ms (far above a real news rate, still one at a time);
- burst: `--burst` headlines put on the bus at once every second (a wire story syndicated by
  several feeds in one poll), where a batching wait could pay for itself;
- rss (reported only): an item appears on a local RSS server (tests/news/newsfeed_server.py)
  polled every 1 s; from the moment it is served to the order (the poll wait dominates).

It measures and prints markdown for bench/RESULTS.md; it decides nothing.

    python bench/news_to_order.py                       # max_wait 20ms and 0, ~2 minutes
    python bench/news_to_order.py --max-wait 0 --samples 50 --no-rss
    python bench/news_to_order.py --max-wait 0 --runtime onnx,torch --no-rss   # before/after
    python bench/news_to_order.py --max-wait 0 --runtime onnx,onnx:int8 --no-rss
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests" / "news"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from newsfeed_server import FeedServer, rss  # noqa: E402

from adapters.bybit.sim import SimConfig, Simulator  # noqa: E402
from bot.assemble import Parts  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.daemon import DaemonOptions, run_daemon  # noqa: E402
from bot.events import NewsItem, Signal  # noqa: E402
from bot.latency import LatencySample  # noqa: E402
from bot.log import setup_logging  # noqa: E402

BULLISH = (
    "Bitcoin surges {n}% as ETF inflows jump to a record",
    "Bitcoin rallies {n}% after a major bank approves crypto custody",
    "Bitcoin soars {n}% as institutional buying accelerates",
)
BEARISH = (
    "Bitcoin plunges {n}% after a major exchange is hacked",
    "Bitcoin crashes {n}% as regulators ban crypto trading",
    "Bitcoin tumbles {n}% amid massive liquidations",
)
BUCKETS_MS = (1, 2.5, 5, 7.5, 10, 15, 20, 30, 50, 100, 250, 1000)


def headline(n: int) -> str:
    pool = BULLISH if n % 2 == 0 else BEARISH
    # the item number keeps every text distinct (no answer comes from the signal cache)
    return pool[(n // 2) % len(pool)].format(n=n % 97 + 2) + f", report {n}"


def _runtime(value: str) -> dict[str, str]:
    """`onnx`, `torch`, or `RUNTIME:PRECISION` (e.g. `onnx:int8`): the `[model]` keys."""
    runtime, _, precision = value.partition(":")
    return {"runtime": runtime, **({"precision": precision} if precision else {})}


def settings(
    sim: Simulator, folder: Path, max_wait: float, feed: str | None, runtime: str = "onnx"
) -> Settings:
    news: dict[str, Any] = {"feeds": []}
    if feed is not None:
        news = {"feeds": [{"url": feed, "name": "bench", "interval": "1s"}], "jitter": 0}
    return Settings().with_overrides(
        bybit={"rest_url": sim.url, "announcements": {"enabled": False}},
        store={
            "url": f"sqlite:///{folder / 'store.sqlite'}",
            "commit_interval": "50ms",
            "cache_dir": str(folder / "cache"),
        },
        model={"max_wait": max_wait, **_runtime(runtime)},
        news=news,
        strategy={
            "half_life": "50ms",
            "aggregation": "share",
            "reevaluate_interval": 0,
            "rebalance_band": 0,
        },
        # many orders a minute, and flips that pay fees: neither may stop the benchmark
        risk={"max_price_age": "1h", "max_orders_per_minute": 100_000, "max_daily_loss": 1.0},
        paper={"slippage_bps": 0, "linear_taker_fee": "0"},
        symbols={"ETHUSDT": {"enabled": False}},
        engine={"snapshot_interval": "1h", "heartbeat_interval": "1h"},
        api={"enabled": False},
    )


class Daemon:
    """A paper daemon on its own task; `parts` once it is ready."""

    def __init__(self, config: Settings) -> None:
        self.config = config
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.parts: Parts | None = None
        self.task: asyncio.Task[Parts] | None = None

    async def __aenter__(self) -> Parts:
        def on_ready(parts: Parts) -> None:
            self.parts = parts
            self.ready.set()

        options = DaemonOptions(mode="paper")
        self.task = asyncio.create_task(run_daemon(self.config, options, self.stop, on_ready))
        waiter = asyncio.create_task(self.ready.wait())
        await asyncio.wait([waiter, self.task], return_when=asyncio.FIRST_COMPLETED)
        if self.parts is None:
            waiter.cancel()
            await self.task  # raises what stopped it
            raise SystemExit("the daemon stopped before it was ready")
        while not self.parts.engine.prices:  # the first price from the simulator's stream
            await asyncio.sleep(0.05)
        return self.parts

    async def __aexit__(self, *_: object) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 60)


class Stages:
    """Bench-side readings (perf_counter, the daemon's own scale): when each news item's first
    signal was dispatched, to split the latency into model (queue + classify) and the rest."""

    def __init__(self, parts: Parts) -> None:
        self.signal_at: dict[str, float] = {}
        self.news_at: dict[str, float] = {}
        parts.bus.subscribe(Signal, self.on_signal)
        parts.bus.subscribe(NewsItem, self.on_news)

    def on_news(self, item: NewsItem) -> None:
        self.news_at.setdefault(item.id, time.perf_counter())

    def on_signal(self, signal: Signal) -> None:
        self.signal_at.setdefault(signal.news_id, time.perf_counter())

    def split(self, samples: list[LatencySample]) -> tuple[list[float], list[float]]:
        to_signal = [self.signal_at[s.news_id] - s.news_at for s in samples]
        to_order = [s.order_at - self.signal_at[s.news_id] for s in samples]
        return to_signal, to_order


async def model_alone(parts: Parts, count: int) -> list[float]:
    """`classify([headline])` on the daemon's own model object, same loop, same moment."""
    values = []
    for n in range(count):
        start = time.perf_counter()
        await parts.model.classify([headline(5000 + n) + " alone"])
        values.append(time.perf_counter() - start)
        await asyncio.sleep(0.05)
    return values


def samples_of(parts: Parts) -> list[LatencySample]:
    assert parts.latency is not None
    return list(parts.latency.samples)


async def wait_for(count: int, parts: Parts, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while len(samples_of(parts)) < count and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)


def news(n: int, prefix: str) -> NewsItem:
    now = datetime.now(UTC)
    return NewsItem(
        id=f"{prefix}{n}",
        source="bench",
        title=headline(n),
        received=now,
        published=now,
        symbols=("BTCUSDT",),
    )


async def steady(parts: Parts, count: int, rng: random.Random) -> list[float]:
    for n in range(count):
        await parts.bus.put(news(n, "s"))
        await asyncio.sleep(rng.uniform(0.2, 0.4))
    await wait_for(count, parts, 10)
    return [s.seconds for s in samples_of(parts)]


async def burst(parts: Parts, stages: Stages, bursts: int, size: int) -> list[float]:
    # Alternating within a burst would cancel out in the vote: a burst is one direction, the
    # next burst the other, so each headline still moves the target (share-weighted by its
    # own confidence) and orders follow.
    ids = []
    for b in range(bursts):
        base = 1000 * (b + 1)
        for k in range(size):
            item = news(base + 2 * k + (b % 2), "b")
            ids.append(item.id)
            await parts.bus.put(item)
        await asyncio.sleep(1.0)
    await asyncio.sleep(0.5)
    return [stages.signal_at[i] - stages.news_at[i] for i in ids if i in stages.signal_at]


async def through_rss(count: int, max_wait: float, sim: Simulator) -> list[float]:
    server = await FeedServer().start()
    entries: list[dict[str, Any]] = []
    server.feed("/feed.rss", lambda: rss(entries))
    latencies = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = settings(sim, Path(tmp), max_wait, server.url("/feed.rss"))
            async with Daemon(config) as parts:
                await asyncio.sleep(1.5)  # the first (empty) poll
                rng = random.Random(7)
                for n in range(count):
                    have = len(samples_of(parts))
                    entries.append(
                        {"title": headline(n), "guid": f"r{n}", "published": datetime.now(UTC)}
                    )
                    appeared = time.perf_counter()
                    await wait_for(have + 1, parts, 5)
                    got = samples_of(parts)
                    if len(got) > have:
                        latencies.append(got[have].order_at - appeared)
                    await asyncio.sleep(rng.uniform(0.0, 1.0))
    finally:
        await server.stop()
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def row(label: str, values: list[float], expected: int) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"| {label} | {f'{len(ms)}/{expected}' if expected else len(ms)} | "
        f"{statistics.median(ms):.2f} | "
        f"{percentile(ms, 0.99):.2f} | {statistics.mean(ms):.2f} | {min(ms):.2f} | "
        f"{max(ms):.2f} |"
    )


def histogram(label: str, values: list[float]) -> list[str]:
    ms = [v * 1000 for v in values]
    lines = [f"{label}:", "", "| <= ms | orders | |", "|---|---|---|"]
    low = 0.0
    for edge in (*BUCKETS_MS, float("inf")):
        count = sum(1 for v in ms if low < v <= edge)
        bar = "#" * round(40 * count / max(1, len(ms)))
        lines.append(f"| {edge:g} | {count} | {bar} |")
        low = edge
    return lines


async def main(args: argparse.Namespace) -> None:
    setup_logging("error", "console")
    print(
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, embedded default model, paper daemon, "
        "SQLite, Bybit simulator prices\n"
    )
    print("| scenario | orders/headlines | p50 ms | p99 ms | mean ms | min ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    histograms: list[str] = []
    sim = Simulator(SimConfig(port=0, tick_interval=0.2))
    await sim.start()
    try:
        for runtime, max_wait in [(r, w) for r in args.runtime for w in args.max_wait]:
            wait = f"max_wait {max_wait * 1000:g}ms, {runtime}"
            with tempfile.TemporaryDirectory() as tmp:
                config = settings(sim, Path(tmp), max_wait, None, runtime)
                async with Daemon(config) as parts:
                    stages = Stages(parts)
                    values = await steady(parts, args.samples, random.Random(21))
                    print(row(f"steady, {wait}", values, args.samples), flush=True)
                    to_signal, to_order = stages.split(samples_of(parts))
                    print(row("- of which news to signal (queue, wait, model)", to_signal, 0))
                    print(row("- of which signal to order (vote, risk, store)", to_order, 0))
                    alone = await model_alone(parts, args.samples // 2)
                    print(row("- reference: model.classify([headline]) alone", alone, 0))
                    histograms += [*histogram(f"steady, {wait}", values), ""]
                    bursts = await burst(parts, stages, args.bursts, args.burst)
                    label = f"burst of {args.burst}, {wait}: news to signal"
                    print(row(label, bursts, args.bursts * args.burst), flush=True)
            if not args.no_rss:
                values = await through_rss(args.rss_samples, max_wait, sim)
                print(row(f"RSS at 1 s poll, {wait}", values, args.rss_samples), flush=True)
    finally:
        await sim.stop()
    print()
    print("\n".join(histograms))


def _durations(text: str) -> list[float]:
    return [float(part.removesuffix("ms")) / 1000 for part in text.split(",")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-wait", type=_durations, default=[0.02, 0.0], help="ms, comma-separated"
    )
    parser.add_argument("--samples", type=int, default=200, help="steady headlines")
    parser.add_argument("--burst", type=int, default=5, help="headlines per burst")
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--rss-samples", type=int, default=20)
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument(
        "--runtime", type=lambda text: text.split(","), default=["onnx"],
        help="[model] runtime values to run, comma-separated (onnx, torch, onnx:int8)",
    )  # fmt: skip
    # the ONNX graph comes from the user's graph cache (exported there once), not per daemon
    from adapters.model.embedded import GRAPH_CACHE_ENV, default_graph_cache

    os.environ.setdefault(GRAPH_CACHE_ENV, str(default_graph_cache()))
    asyncio.run(main(parser.parse_args()))
