"""One scenario, run twice: as a replay backtest and through the live paper daemon.

The daemon gets the same files played out in real time (live clock, asyncio queues, the batching
signal service); the backtest replays them with the replay clock. Same engine graph, same orders.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot.backtest import run_backtest
from bot.config import Settings
from bot.daemon import DaemonOptions, ReplayFiles, run_daemon

# Real time passes in the daemon's half: every interval below is a multiple of the bar, and the
# bar is long enough that a loaded machine (a late start, a slow batch) still answers each
# headline within the bar it arrived in.
BAR = timedelta(milliseconds=400)
LEAD = timedelta(seconds=3)  # the daemon's start-up before the first bar


def ms(span: timedelta) -> str:
    return f"{span // timedelta(milliseconds=1)}ms"


def scenario(tmp_path: Path, start: datetime) -> tuple[Path, Path, datetime]:
    bars = tmp_path / "bars.csv"
    price = 40000.0
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(36):
        price += 12 if i < 12 else -9 if i < 24 else 3
        ts = start + BAR * i
        lines.append(
            f"{ts.isoformat()},{price - 5:.1f},{price + 20:.1f},{price - 25:.1f},{price:.1f},1"
        )
    bars.write_text("\n".join(lines) + "\n")
    news = tmp_path / "news.jsonl"
    titles = [
        (3.5, "Bitcoin surges as ETF inflows jump"),
        (13.5, "Bitcoin plunges after exchange hack"),
        (23.5, "Bitcoin trades flat, markets unchanged"),
    ]
    with news.open("w") as handle:
        for n, (at, title) in enumerate(titles):
            ts = (start + BAR * at).isoformat()
            handle.write(
                json.dumps(
                    {
                        "id": f"s{n}",
                        "source": "test",
                        "title": title,
                        "received": ts,
                        "symbols": ["BTCUSDT"],
                    }
                )
                + "\n"
            )
    return news, bars, start + BAR * 36


def config(tmp_path: Path, name: str) -> Settings:
    return Settings().with_overrides(
        store={
            "url": f"sqlite:///{tmp_path / name}.sqlite",
            "cache_dir": str(tmp_path / name),
            "commit_interval": 0.05,
        },
        strategy={"window": ms(BAR * 7.5), "half_life": 0, "reevaluate_interval": 0},
        risk={"max_price_age": ms(BAR * 5)},
        engine={"snapshot_interval": ms(BAR * 5), "heartbeat_interval": "10s"},
        model={"backend": "lexicon", "max_wait": "5ms"},
    )


async def test_paper_daemon_and_replay_place_the_same_orders(tmp_path: Path) -> None:
    start = datetime.now(UTC) + LEAD
    news, bars, end = scenario(tmp_path, start)

    stop = asyncio.Event()

    async def stopper() -> None:
        await asyncio.sleep((end - datetime.now(UTC)).total_seconds() + 3 * BAR.total_seconds())
        stop.set()

    task = asyncio.create_task(stopper())
    options = DaemonOptions(
        mode="paper", replay=ReplayFiles(news, bars, 1.0, rebase=False), live_feeds=False
    )
    parts = await run_daemon(config(tmp_path, "live"), options, stop)
    await task
    live = [(f.side.value, f.qty, f.price) for f in parts.store.fills("paper")]

    result = await asyncio.to_thread(
        run_backtest,
        config(tmp_path, "replay"),
        bars_path=bars,
        news_path=news,
        out_dir=tmp_path / "bt",
        progress=False,
    )
    replay = [(t.side, t.qty, t.price) for t in result.recording.trades]

    assert len(replay) == 3, replay  # long, flip short, flat
    assert [side for side, _, _ in replay] == ["buy", "sell", "buy"]
    assert live == replay
    assert all(isinstance(q, Decimal) for _, q, _ in live)
