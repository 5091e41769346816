"""`lorabot run --mode live` against the local Bybit simulator and a local RSS feed.

A headline makes the daemon rest a limit buy at Bybit; the daemon is SIGKILLed; the order fills
while it is down; the restarted daemon reconciles the fill, the position and the cash from the
venue. Real processes, real sockets, the real engine, news poller and Bybit adapter.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path

import pytest
from aiohttp import web

from adapters.bybit.sim import Simulator
from adapters.bybit.sim.server import SimConfig

ROOT = Path(__file__).resolve().parents[2]


class Feed:
    """An RSS 2.0 feed on 127.0.0.1 whose items the test adds while the daemon polls it."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, datetime]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/feed.rss", self._serve)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/feed.rss"

    async def _serve(self, _: web.Request) -> web.Response:
        entries = "".join(
            f"<item><guid>{guid}</guid><title>{title}</title>"
            f"<pubDate>{format_datetime(at)}</pubDate></item>"
            for guid, title, at in self.items
        )
        body = (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>wire</title>'
            f"<link>http://127.0.0.1/</link>{entries}</channel></rss>"
        )
        return web.Response(body=body.encode(), content_type="application/rss+xml")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def venue() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimConfig(port=0, speed=1.0, tick_interval=0.05, order_rate_limit=50))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def feed() -> AsyncIterator[Feed]:
    server = Feed()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def write_config(tmp_path: Path, sim: Simulator, feed: Feed) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[engine]
snapshot_interval = "1s"
reconcile_interval = 0
[store]
url = "sqlite:///{tmp_path / "live.sqlite"}"
cache_dir = "{tmp_path / "cache"}"
commit_interval = "50ms"
[model]
backend = "lexicon"
max_wait = "5ms"
[news]
poll_interval = "200ms"
timeout = "2s"
backoff_initial = "200ms"
backoff_max = "1s"
[[news.feeds]]
url = "{feed.url}"
name = "wire"
[bybit]
rest_url = "{sim.url}"
ping_interval = "500ms"
silence_timeout = "3s"
reconnect_initial = "100ms"
reconnect_max = "500ms"
rest_timeout = "3s"
[strategy]
window = "1h"
half_life = 0
reevaluate_interval = 0
order_type = "limit"
limit_offset_bps = 100.0
limit_timeout = "1h"
[risk]
max_price_age = "30s"
[log]
format = "json"
""")
    return config


async def start_daemon(config: Path, tmp_path: Path, log: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BYBIT_API_KEY": "sim-key",
        "BYBIT_API_SECRET": "sim-secret",
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--mode",
        "live",
        "--config",
        str(config),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


async def until(predicate: object, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    tail = log.read_text()[-4000:] if log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


@pytest.mark.slow
async def test_live_daemon_killed_with_a_resting_order_reconciles_on_restart(
    venue: Simulator, feed: Feed, tmp_path: Path
) -> None:
    config = write_config(tmp_path, venue, feed)
    db = tmp_path / "live.sqlite"
    log = tmp_path / "daemon.log"
    first = await start_daemon(config, tmp_path, log)
    try:
        await until(
            lambda: '"daemon starting"' in log.read_text() if log.exists() else False,
            30,
            "the daemon to start",
            log,
        )
        await asyncio.sleep(1.5)  # a first poll of the (empty) feed and a few prices
        feed.items.append(("g1", "Bitcoin surges as ETF inflows jump", datetime.now(UTC)))
        await until(
            lambda: query(db, "select count(*) from orders where status = 'accepted'") == [(1,)],
            30,
            "a resting limit order",
            log,
        )
        order_id, limit = query(db, "select client_order_id, price from orders")[0]
        assert any(
            o.link_id == order_id and o.status == "New" for o in venue.account.orders.values()
        )
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()

    venue.set_price("BTCUSDT", float(Decimal(str(limit)) * Decimal("0.97")))
    await until(
        lambda: any(
            o.link_id == order_id and o.status == "Filled" for o in venue.account.orders.values()
        ),
        10,
        "the fill at Bybit",
        log,
    )
    assert query(db, "select count(*) from fills") == [(0,)]  # it happened while we were down

    second = await start_daemon(config, tmp_path, log)
    try:
        await until(
            lambda: query(db, "select status from orders") == [("filled",)],
            30,
            "the reconciled fills",
            log,
        )
        await asyncio.sleep(1.0)
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0

    venue_execs = sorted(e.exec_id for e in venue.account.executions if e.order.link_id == order_id)
    stored = query(db, "select exec_id, qty from fills")
    assert sorted(str(e) for e, _ in stored) == venue_execs
    assert query(db, f"select status from orders where client_order_id = '{order_id}'") == [
        ("filled",)
    ]
    position = venue.account.positions["BTCUSDT"].size  # type: ignore[index]
    assert sum(Decimal(str(q)) for _, q in stored) == position
    snapshot = query(
        db,
        "select qty from position_snapshots where symbol = 'BTCUSDT' "
        "order by ts desc, id desc limit 1",
    )
    assert snapshot and Decimal(str(snapshot[0][0])) == position
    text = log.read_text()
    assert text.count('"daemon starting"') == 2 and '"resumed account"' in text
