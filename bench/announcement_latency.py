"""Announcement latency: seconds from a Bybit announcement appearing to its signal.

A paper daemon runs against the local Bybit simulator (adapters/bybit/sim) with Bybit's
announcements as its only news source and the lexicon model. Announcements are added to the
simulator at random moments (`Announcements.add`, published "now"); each one's latency is its
`Signal.ts` in the store (stamped by the signal service on the daemon's clock) minus the moment it
became visible on the simulator. An item waits for the next poll, so the mean is about half the
interval plus the cost of one poll, the store commit, the bus and the model.

It measures and prints (markdown for bench/RESULTS.md); it decides nothing.

    python bench/announcement_latency.py                  # 1 s and the default 60 s (~4 min)
    python bench/announcement_latency.py --quick          # 1 s only, a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.bybit.sim import SimConfig, Simulator  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.daemon import DaemonOptions, run_daemon  # noqa: E402
from bot.log import setup_logging  # noqa: E402

TITLES = (
    "New Listing: {coin}USDT Perpetual Contract, with up to 50x leverage",
    "Bybit will delist the {coin}USDT perpetual contract",
    "Bitcoin trading competition: {coin} prize pool",
)


def _settings(sim: Simulator, folder: Path, interval: float) -> Settings:
    return Settings().with_overrides(
        bybit={"rest_url": sim.url, "announcements": {"interval": interval}},
        store={
            "url": f"sqlite:///{folder / 'store.sqlite'}",
            "commit_interval": "50ms",
            "cache_dir": str(folder / "cache"),
        },
        model={"backend": "lexicon", "max_wait": "5ms"},
        news={"feeds": []},
        strategy={"reevaluate_interval": 0},
        engine={"snapshot_interval": "1h", "heartbeat_interval": "1h"},
    )


def _signal_times(db: Path) -> dict[str, datetime]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select news_id, min(ts) from signals group by news_id")
        times = {news_id: datetime.fromisoformat(ts) for news_id, ts in rows}
    # SQLite keeps the UTC time without its zone.
    return {key: ts if ts.tzinfo else ts.replace(tzinfo=UTC) for key, ts in times.items()}


async def measure(interval: float, samples: int, gap: tuple[float, float]) -> list[float]:
    """Latencies (s) of `samples` announcements added `gap` seconds apart (uniform)."""
    rng = random.Random(21)
    sim = Simulator(SimConfig(port=0, tick_interval=0.2))
    await sim.start()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stop = asyncio.Event()
        daemon = asyncio.create_task(
            run_daemon(_settings(sim, folder, interval), DaemonOptions(mode="paper"), stop=stop)
        )
        added: dict[str, int] = {}
        try:
            await asyncio.sleep(3)  # start-up: instruments, streams, the first (empty) poll
            for n in range(samples):
                await asyncio.sleep(rng.uniform(*gap))
                coin = f"C{n:03d}"
                item = sim.announcements.add(TITLES[n % len(TITLES)].format(coin=coin))
                added[item.url] = item.publish_ms
            db = folder / "store.sqlite"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + interval + 10
            while loop.time() < deadline and len(_signal_times(db).keys() & added.keys()) < len(
                added
            ):
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(daemon, 30)
            await sim.stop()
        seen = _signal_times(folder / "store.sqlite")
    missing = [url for url in added if url not in seen]
    if missing:
        raise SystemExit(f"{len(missing)} announcements never became a signal: {missing[:3]}")
    return [seen[url].timestamp() - added[url] / 1000 for url in added]


def _row(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[max(0, round(0.9 * len(ordered)) - 1)]
    return (
        f"| {label} | {len(values)} | {statistics.mean(values):.3f} | "
        f"{statistics.median(values):.3f} | {p90:.3f} | {min(values):.3f} | {max(values):.3f} |"
    )


async def main(quick: bool) -> None:
    setup_logging("error", "text")
    print(f"Python {platform.python_version()}, {platform.machine()}, lexicon model, SQLite\n")
    print("| interval | announcements | mean s | median s | p90 s | min s | max s |")
    print("|---|---|---|---|---|---|---|")
    fast = await measure(1.0, 10 if quick else 30, (0.2, 1.3))
    print(_row("1 s", fast), flush=True)
    if not quick:
        default = await measure(60.0, 12, (5.0, 25.0))
        print(_row("60 s (default)", default), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s interval only, 10 items")
    asyncio.run(main(parser.parse_args().quick))
