"""Merging and windowing event streams, the part of replay that is not about files.

Release times are what keep a backtest honest: a news item is released at `received` and a bar
at its close, never its open. Ties go to bars, so a decision made on news at T can only fill on a
bar that opens at T or later.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from bot.events import Bar, NewsItem


def merge(news: Sequence[NewsItem], bars: Iterable[Bar]) -> Iterator[NewsItem | Bar]:
    """News and bars by release time; on a tie the bar (closing at T) goes first.

    `news` is small and sorted; bars stream. A plain two-way merge keeps the per-bar cost to one
    comparison, which matters at a million bars; with no news the bars pass straight through.
    """
    if not news:
        return iter(bars)
    return _merged(news, bars)


def _merged(news: Sequence[NewsItem], bars: Iterable[Bar]) -> Iterator[NewsItem | Bar]:
    index = 0
    count = len(news)
    for bar in bars:
        ts = bar.ts
        while index < count and news[index].received < ts:
            yield news[index]
            index += 1
        yield bar
    while index < count:
        yield news[index]
        index += 1


def window(
    events: Iterator[NewsItem | Bar], start: datetime | None, end: datetime | None
) -> Iterator[NewsItem | Bar]:
    """Only what is released within [start, end]."""
    if start is None and end is None:
        return events  # no filter: one generator fewer for every event
    return _within(events, start, end)


def _within(
    events: Iterator[NewsItem | Bar], start: datetime | None, end: datetime | None
) -> Iterator[NewsItem | Bar]:
    for event in events:
        ts = event.ts
        if start is not None and ts < start:
            continue
        if end is not None and ts > end:
            return
        yield event
