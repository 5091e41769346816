"""File-driven live sources: a news file and a bars file played out in real time.

They let the paper daemon run with no network at all — for a demo, for trying a strategy against
a recorded day as if it were happening, and for tests that drive the real daemon (a subprocess
that is killed and restarted) through the live code path. By default timestamps are rebased so
that the first event happens now (`speed` > 1 compresses time, bar intervals included; strategy
windows are not scaled). With `rebase=False` events keep their own times: those already in the
past when the source starts are skipped (bars) or published flagged stale (news not yet stored),
as a real stream and feed poller would behave after a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from adapters.files.bars import iter_bars
from adapters.files.news import read_news
from bot.clock import Clock
from bot.log import get_logger
from bot.protocols import LinkState, Publish
from bot.symbols import SymbolTable

log = get_logger("adapters.files.paced")


class _Timeline:
    def __init__(self, clock: Clock, first: datetime | None, speed: float, rebase: bool) -> None:
        self.clock = clock
        self.speed = speed
        self.rebase = rebase
        self.origin = first
        self.start = clock.now()

    def map(self, ts: datetime) -> datetime:
        if not self.rebase or self.origin is None:
            return ts
        return self.start + (ts - self.origin) / self.speed

    async def wait_until(self, ts: datetime) -> None:
        delay = (ts - self.clock.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class PacedNews:
    """News from a JSONL/CSV file, released at each item's `received` time."""

    def __init__(
        self,
        path: Path,
        symbols: SymbolTable,
        clock: Clock,
        *,
        speed: float = 1.0,
        rebase: bool = True,
        known: Callable[[Sequence[str]], set[str]] | None = None,
        origin: datetime | None = None,
        skip_bad_rows: bool = False,
    ) -> None:
        self.name = f"file:{path.name}"
        self.items = read_news(path, symbols, skip_bad_rows=skip_bad_rows)
        self.clock = clock
        self.speed = speed
        self.rebase = rebase
        self.known = known
        self.origin = origin

    async def run(self, publish: Publish) -> None:
        first = self.origin or (self.items[0].received if self.items else None)
        timeline = _Timeline(self.clock, first, self.speed, self.rebase)
        seen = self.known([i.id for i in self.items]) if self.known else set()
        for item in self.items:
            if item.id in seen:
                continue
            released = timeline.map(item.received)
            published = timeline.map(item.published) if item.published else None
            stale = item.stale
            if released < timeline.start:
                stale = True  # appeared while we were not running
            else:
                await timeline.wait_until(released)
            await publish(replace(item, received=released, published=published, stale=stale))
        log.info("news file played out", source=self.name, items=len(self.items))


class PacedBars:
    """Bars from a file, each released at its close time."""

    def __init__(
        self,
        path: Path,
        symbol: str,
        clock: Clock,
        *,
        speed: float = 1.0,
        rebase: bool = True,
        origin: datetime | None = None,
        skip_bad_rows: bool = False,
    ) -> None:
        self.path = path
        self.skip_bad_rows = skip_bad_rows
        self.symbol = symbol
        self.clock = clock
        self.speed = speed
        self.rebase = rebase
        self.origin = origin
        self.played = 0
        self.playing = False

    def links(self) -> tuple[LinkState, ...]:
        return (LinkState("bars file", str(self.path), self.playing, messages=self.played),)

    async def run(self, publish: Publish) -> None:
        self.playing = True
        try:
            await self._play(publish)
        finally:
            self.playing = False

    async def _play(self, publish: Publish) -> None:
        bars = iter_bars(self.path, self.symbol, skip_bad_rows=self.skip_bad_rows)
        timeline: _Timeline | None = None
        count = 0
        for bar in bars:
            if timeline is None:
                timeline = _Timeline(
                    self.clock, self.origin or bar.ts_open, self.speed, self.rebase
                )
            ts_open, ts = timeline.map(bar.ts_open), timeline.map(bar.ts)
            if ts < timeline.start:
                continue  # a bar that closed before we started is history, not a live update
            await timeline.wait_until(ts)
            await publish(bar._replace(ts_open=ts_open, ts=ts))
            count += 1
            self.played = count
        log.info("bars file played out", path=str(self.path), bars=count)


def common_origin(
    news: Path | None, bars: Path | None, symbol: str, *, skip_bad_rows: bool = False
) -> datetime | None:
    """The earliest time in either file, so that both are rebased by the same offset."""
    candidates: list[datetime] = []
    if bars is not None:
        first = next(iter_bars(bars, symbol, skip_bad_rows=skip_bad_rows), None)
        if first is not None:
            candidates.append(first.ts_open)
    if news is not None:
        items = read_news(news, skip_bad_rows=skip_bad_rows)
        if items:
            candidates.append(items[0].received)
    return min(candidates) if candidates else None


__all__ = ["PacedBars", "PacedNews", "common_origin"]
