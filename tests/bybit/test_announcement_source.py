"""Bybit announcements as lorabot's news source (issue 21), against the simulator.

Paging stops at items already seen, a restart (a new source on the same store) publishes
nothing twice, 10006 and 5xx are waited out and a poll that still fails backs off, a malformed
record is skipped with its reason while the rest of the page is kept, and the official pybit
client reads the page the source read.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pybit.unified_trading import HTTP
from structlog.testing import capture_logs

from adapters.bybit.announcements import PATH, SOURCE, BybitAnnouncements, announcements_host
from adapters.bybit.sim import Simulator
from bot.clock import LiveClock
from bot.config import Settings
from bot.store import Store
from bot.symbols import SymbolTable

from .harness import settings_for


def _settings(sim: Simulator, **announcements: Any) -> Settings:
    settings = settings_for(
        sim, announcements={"page_size": 10, "interval": "100ms", **announcements}
    )
    return settings.with_overrides(news={"backoff_initial": "200ms", "backoff_max": "1s"})


def _source(settings: Settings, store: Store, **kwargs: Any) -> BybitAnnouncements:
    return BybitAnnouncements.from_settings(
        settings, store, SymbolTable.from_settings(settings), clock=LiveClock(), **kwargs
    )


def _script(sim: Simulator, count: int, minutes_ago: int = 1) -> None:
    now = sim.now_ms()
    for n in range(count):
        sim.announcements.add(
            f"Bybit will list COIN{n}USDT perpetual",
            "new_crypto",
            publish_ms=now - (count - n + minutes_ago) * 60_000,
        )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'news.sqlite'}")


async def test_paging_stops_at_items_already_seen_and_a_restart_publishes_nothing_twice(
    sim: Simulator, store: Store, tmp_path: Path
) -> None:
    settings = _settings(sim)
    _script(sim, 25)
    source = _source(settings, store)
    try:
        first = await source.poll()
        assert first.error == "" and len(first.items) == 25
        assert source.rest.calls == 3  # 10 + 10 + 5: the short page is the end of the list
        assert all(item.stale for item in first.items)  # listed before start-up
        assert [item.title for item in first.items][-1] == "Bybit will list COIN24USDT perpetual"
        assert {item.source for item in first.items} == {SOURCE}

        sim.announcements.add("Bybit will list NEWAUSDT perpetual", "new_crypto")
        sim.announcements.add("Bybit will delist NEWBUSDT perpetual", "delistings")
        calls = source.rest.calls
        second = await source.poll()
        assert source.rest.calls == calls + 1  # page 1 held known items: no page 2
        assert [item.symbols for item in second.items] == [("NEWAUSDT",), ("NEWBUSDT",)]
        assert not any(item.stale for item in second.items)  # appeared while listening
        assert (await source.poll()).items == []
    finally:
        await source.rest.close()

    restarted = _source(settings, store)  # a new process on the same news log
    try:
        again = await restarted.poll()
        assert again.items == [] and again.error == ""
        assert restarted.rest.calls == 1 and again.earlier == 10  # page 1 only, all known
    finally:
        await restarted.rest.close()
    store.close()
    with sqlite3.connect(tmp_path / "news.sqlite") as db:
        rows = db.execute("select id, source, raw from news_items").fetchall()
    assert len(rows) == 27 and len({row[0] for row in rows}) == 27
    raw = json.loads(rows[0][2])
    assert raw["type_key"] == "new_crypto" and raw["type"]["key"] == "new_crypto"


async def test_a_rate_limit_and_a_5xx_are_waited_out(sim: Simulator, store: Store) -> None:
    settings = _settings(sim)
    _script(sim, 3)
    sim.faults.fail_rest(PATH, 10006, count=2)
    sim.faults.fail_rest(PATH, 0, count=1, http_status=502)
    source = _source(settings, store)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        result = await source.poll()
    finally:
        await source.rest.close()
    assert result.error == "" and len(result.items) == 3
    assert source.rest.retries == 3
    assert loop.time() - started >= 0.3  # two waits for Bybit's reset time (200 ms each)


async def test_a_poll_that_still_fails_backs_off_doubling(sim: Simulator, store: Store) -> None:
    settings = _settings(sim).with_overrides(bybit={"rest_retries": 0})
    _script(sim, 2)
    sim.faults.fail_rest(PATH, 10006, count=2)
    source = _source(settings, store)
    try:
        first = await source.poll()
        second = await source.poll()
        third = await source.poll()
    finally:
        await source.rest.close()
    assert "10006" in first.error and first.items == []
    assert (first.retry_in, second.retry_in) == (0.2, 0.4)
    assert third.error == "" and len(third.items) == 2 and source.failures == 0
    state = store.feed_state(source.url)
    assert state is not None and state["error_count"] == 0 and state["items_seen"] == 2


async def test_the_daemon_loop_retries_after_the_backoff(sim: Simulator, store: Store) -> None:
    """`run` on its timers: a failing first poll, then the items after the backoff."""
    settings = _settings(sim).with_overrides(bybit={"rest_retries": 0})
    _script(sim, 2)
    sim.faults.fail_rest(PATH, 10006, count=1)
    source = _source(settings, store)
    published: list[object] = []

    async def publish(item: object) -> None:
        published.append(item)

    task = asyncio.create_task(source.run(publish))
    try:
        for _ in range(100):
            if len(published) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(published) == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert source.rest.calls == 2


async def test_a_malformed_item_is_skipped_with_its_reason_and_the_page_kept(
    sim: Simulator, store: Store
) -> None:
    settings = _settings(sim)
    _script(sim, 3)
    sim.announcements.add("  ", "new_crypto", publish_ms=sim.now_ms() - 1000)
    sim.announcements.add("Bybit will list BADUSDT", "new_crypto", publish_ms=5)
    source = _source(settings, store)
    try:
        with capture_logs() as logged:
            result = await source.poll()
    finally:
        await source.rest.close()
    assert result.error == "" and len(result.items) == 3
    assert result.invalid == [
        "page 1 item 1: title is empty",
        "page 1 item 5: publishTime 5 is not a time in milliseconds since 1970",
    ]
    skipped = [entry for entry in logged if entry["event"] == "bybit announcement skipped"]
    assert [(entry["where"], entry["reason"]) for entry in skipped] == [
        ("page 1 item 1", "title is empty"),
        ("page 1 item 5", "publishTime 5 is not a time in milliseconds since 1970"),
    ]


async def test_paging_stops_at_items_older_than_max_age_and_at_max_pages(
    sim: Simulator, store: Store
) -> None:
    _script(sim, 25)  # 2 to 26 minutes old
    old = _settings(sim).with_overrides(news={"max_age": "10m"})
    source = _source(old, store)
    try:
        result = await source.poll(record=False)
    finally:
        await source.rest.close()
    assert len(result.items) == 10 and source.rest.calls == 1  # page 1 reaches 11 minutes
    capped = _source(_settings(sim, max_pages=2), store)
    try:
        result = await capped.poll(record=False)
    finally:
        await capped.rest.close()
    assert len(result.items) == 20 and capped.rest.calls == 2


async def test_pybit_reads_the_page_the_source_read(sim: Simulator, store: Store) -> None:
    settings = _settings(sim)
    _script(sim, 7)
    source = _source(settings, store)
    try:
        ours = await source.poll(record=False)
    finally:
        await source.rest.close()

    def read() -> dict[str, Any]:
        http = HTTP(max_retries=1, retry_codes={-1})
        http.endpoint = sim.url
        answer: dict[str, Any] = http.get_announcement(locale="en-US", limit=10)
        return answer

    theirs = await asyncio.wait_for(asyncio.to_thread(read), 30)
    pages = theirs["result"]["list"]
    assert {item["url"] for item in pages} == {item.id for item in ours.items}
    assert {item["title"] for item in pages} == {item.title for item in ours.items}
    assert store.news_ids(item.id for item in ours.items) == set()  # a look records nothing


async def test_types_are_queried_one_by_one(sim: Simulator, store: Store) -> None:
    settings = _settings(sim, types=["delistings"])
    sim.announcements.add("Bybit will delist OLDUSDT perpetual", "delistings")
    sim.announcements.add("Scheduled maintenance", "maintenance_updates")
    source = _source(settings, store)
    try:
        result = await source.poll()
    finally:
        await source.rest.close()
    assert [item.title for item in result.items] == ["Bybit will delist OLDUSDT perpetual"]


def test_announcements_are_read_from_mainnets_public_host_unless_rest_url_is_set() -> None:
    for network in ("demo", "testnet", "mainnet"):
        settings = Settings().with_overrides(bybit={"network": network})
        assert announcements_host(settings) == "https://api.bybit.com"
    local = Settings().with_overrides(bybit={"rest_url": "http://127.0.0.1:8765"})
    assert announcements_host(local) == "http://127.0.0.1:8765"


def test_the_daemon_reads_them_beside_venue_prices_only(tmp_path: Path) -> None:
    from bot.assemble import ReplayFiles, _news_sources

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    settings = Settings().with_overrides(news={"feeds": []})
    symbols = SymbolTable.from_settings(settings)
    clock = LiveClock()
    try:
        sources = _news_sources(settings, symbols, store, clock, None, True)
        assert [source.name for source in sources] == [SOURCE]
        bars = ReplayFiles(bars=tmp_path / "bars.csv")
        assert _news_sources(settings, symbols, store, clock, bars, True) == []
        off = settings.with_overrides(bybit={"announcements": {"enabled": False}})
        assert _news_sources(off, symbols, store, clock, None, True) == []
    finally:
        store.close()
