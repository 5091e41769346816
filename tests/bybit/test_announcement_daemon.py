"""The paper daemon on the simulator with Bybit's announcements as its news source.

An announcement added while the daemon runs becomes one signal and one decision; one about a
symbol lorabot does not trade is stored and classified but moves no target (its one decision is
"not traded", not a market-wide vote on every symbol); a restarted daemon publishes nothing twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.bybit.announcements import PATH
from adapters.bybit.sim import Simulator
from bot.config import Settings
from bot.daemon import DaemonOptions, run_daemon

from .harness import settings_for


def _settings(sim: Simulator, tmp_path: Path) -> Settings:
    return settings_for(sim, announcements={"interval": "200ms"}).with_overrides(
        store={
            "url": f"sqlite:///{tmp_path / 'store.sqlite'}",
            "commit_interval": "50ms",
            "cache_dir": str(tmp_path / "cache"),
        },
        model={"backend": "lexicon", "max_wait": "5ms"},
        news={"feeds": []},
        strategy={"reevaluate_interval": 0},
        engine={"snapshot_interval": "1h", "heartbeat_interval": "1h"},
    )


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


async def _daemon_until(
    settings: Settings, done: Callable[[], bool], then: Callable[[], None] | None = None
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_daemon(settings, DaemonOptions(mode="paper"), stop=stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    try:
        while not done():
            assert not task.done(), task.exception()
            assert loop.time() < deadline, "the daemon did not get there in time"
            if then is not None:
                then()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


@pytest.mark.slow
async def test_an_announcement_becomes_one_signal_and_one_decision(
    sim: Simulator, tmp_path: Path
) -> None:
    settings = _settings(sim, tmp_path)
    db = tmp_path / "store.sqlite"
    sim.announcements.add("Bybit system upgrade completed", publish_ms=sim.now_ms() - 60_000)
    polled = f"select items_seen from feed_state where url = '{sim.url}{PATH}'"
    signals = "select news_id, symbol_key, stale from signals order by ts"
    added: list[str] = []

    def add_once_listening() -> None:
        if not added and _query(db, polled):
            added.append(
                sim.announcements.add(
                    "New Listing: BTCUSDT Perpetual Contract, trading surges", "new_crypto"
                ).url
            )
            added.append(
                sim.announcements.add("Bybit will delist ABCUSDT perpetual", "delistings").url
            )

    await _daemon_until(settings, lambda: len(_query(db, signals)) >= 3, add_once_listening)
    listing, delisting = added
    rows = _query(db, signals)
    backlog = [row for row in rows if row[0] not in added]
    assert len(backlog) == 1 and all(row[2] == 1 for row in backlog)  # market-wide, stale
    assert [row for row in rows if row[0] == listing] == [(listing, "BTCUSDT", 0)]
    assert [row for row in rows if row[0] == delisting] == [(delisting, "ABCUSDT", 0)]
    decisions = "select news_id, symbol, outcome from decisions where news_id = '{}'"
    assert [row[1] for row in _query(db, decisions.format(listing))] == ["BTCUSDT"]
    assert _query(db, decisions.format(delisting)) == [(delisting, "ABCUSDT", "not traded")]
    news = "select id, source, symbols, signal_status from news_items where id = '{}'"
    assert _query(db, news.format(delisting)) == [
        (delisting, "bybit-announcements", "ABCUSDT", "done")
    ]

    # Restart: nothing new on the venue, so nothing is published again.
    before = _query(db, "select count(*) from signals")
    successes = "select last_success from feed_state"
    last = _query(db, successes)
    loop = asyncio.get_running_loop()
    settle = loop.time() + 1.0  # several polls, and time for what they published to be stored

    def polled_again() -> bool:
        return _query(db, successes) != last and loop.time() > settle

    await _daemon_until(settings, polled_again)
    assert _query(db, "select count(*) from signals") == before
