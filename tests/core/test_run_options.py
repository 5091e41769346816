"""`lorabot run`'s choices of sources (issue 13): no news refused unless said, live with a news
file against the simulator, never with real money."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.bybit.sim import Simulator
from adapters.bybit.sim.server import SimConfig

from .test_live_daemon import query, until

ROOT = Path(__file__).resolve().parents[2]
HEADLINE = "Bitcoin surges as ETF inflows jump"


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        **extra,
    }


def lorabot(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env(tmp_path, **extra),
        timeout=120,
    )


def config(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "config.toml"
    # tests pin their own feeds: none, unless a test serves one
    path.write_text('[model]\nbackend = "lexicon"\n[news]\nfeeds = []\n' + text)
    return path


def news_file(tmp_path: Path) -> Path:
    path = tmp_path / "news.csv"
    path.write_text(f"timestamp,source,title\n2024-01-01T00:00:00Z,wire,{HEADLINE}\n")
    return path


def test_a_daemon_with_no_news_source_refuses_to_start(tmp_path: Path) -> None:
    result = lorabot(tmp_path, "run", "--mode", "paper", "--config", str(config(tmp_path)))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no news source" in lines[0] and "--no-news" in lines[0]


@pytest.mark.parametrize("speed", ["nan", "0", "-1"])
def test_a_speed_that_is_not_positive_is_one_line(tmp_path: Path, speed: str) -> None:
    args = ["run", "--replay-news", str(news_file(tmp_path)), "--speed", speed]
    result = lorabot(tmp_path, *args, "--config", str(config(tmp_path)))
    assert result.returncode != 0 and "--speed" in result.stderr
    assert "Traceback" not in result.stderr


def test_live_mode_refuses_replayed_bars(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text("timestamp,open,high,low,close,volume\n")
    result = lorabot(
        tmp_path,
        "run",
        "--mode",
        "live",
        "--replay-bars",
        str(bars),
        "--config",
        str(config(tmp_path)),
    )
    assert result.returncode != 0 and "--replay-bars is for paper mode only" in result.stderr


@pytest.mark.parametrize(
    "bybit",
    [
        '[bybit]\nnetwork = "mainnet"\n',
        '[bybit]\nnetwork = "demo"\nrest_url = "https://api.bybit.com"\n',
    ],
)
def test_live_mode_never_replays_news_with_real_money(tmp_path: Path, bybit: str) -> None:
    args = ["run", "--mode", "live", "--confirm-mainnet", "--replay-news", str(news_file(tmp_path))]
    result = lorabot(
        tmp_path,
        *args,
        "--config",
        str(config(tmp_path, bybit)),
        BYBIT_API_KEY="k",
        BYBIT_API_SECRET="s",
    )
    assert result.returncode != 0
    assert "trade real money" in result.stderr, result.stderr


@pytest.mark.slow
async def test_live_mode_plays_a_news_file_against_the_simulator(tmp_path: Path) -> None:
    simulator = Simulator(SimConfig(port=0, speed=1.0, tick_interval=0.05))
    await simulator.start()
    try:
        path = config(
            tmp_path,
            f"""
[engine]
snapshot_interval = "1s"
[store]
commit_interval = "50ms"
[bybit]
rest_url = "{simulator.url}"
ping_interval = "500ms"
rest_timeout = "3s"
[strategy]
window = "1h"
half_life = 0
reevaluate_interval = "1s"  # the news may play before the first price: the re-vote trades it
[risk]
max_price_age = "30s"
[log]
format = "json"
""",
        )
        log = tmp_path / "daemon.log"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--mode",
            "live",
            "--replay-news",
            str(news_file(tmp_path)),
            "--config",
            str(path),
            cwd=tmp_path,
            env=env(tmp_path, BYBIT_API_KEY="sim-key", BYBIT_API_SECRET="sim-secret"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log.open("ab"),
        )
        db = tmp_path / "data" / "lorabot" / "lorabot.sqlite"
        try:
            await until(
                lambda: query(db, "select status from orders") == [("filled",)],
                60,
                "the order filled",
                log,
            )
        finally:
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0
        assert [o.link_id for o in simulator.account.orders.values()] == [
            query(db, "select client_order_id from orders")[0][0]
        ]
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        events = [r["event"] for r in records]
        assert "live trading" in events and "order sent" in events and "fill" in events
    finally:
        await simulator.stop()
