"""`lorabot analyze`'s run: a news file's signals and the bars files, through the event study.

Why the signals come from the signal service and not from the model directly: they must be the
very ones a backtest trades on. `bot.assemble.signal_service` configures the one `SignalService`
the engine also gets (the same model, the signal cache, so the model runs once per headline
however many analyses follow, and the market-wide weighting), the news reader tags the symbols
as for a backtest, and the items are released in order on a `ReplayClock`; only the engine,
which would trade on them, is left out, and the service's signals are collected instead.

What cannot be studied is counted, never dropped: news before or after a symbol's bars, windows
across gaps or past the end (in the document's `counts` and `warnings`, from the event study),
and bad rows of the files (refused, or left out one line each with `--skip-bad-rows`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot import assemble
from bot.clock import ReplayClock
from bot.config import Settings
from bot.errors import InputError, UserError
from bot.events import Bar, NewsItem, Signal
from bot.protocols import ModelUnavailable
from bot.replay import Progress
from bot.research.event_study import StudyOptions, analyze
from bot.research.signals import SignalArrays
from bot.research.timeline import Bars, parse_horizon
from bot.streams import merge
from bot.symbols import SymbolTable


@dataclass(frozen=True)
class AnalysisRequest:
    """What `lorabot analyze` was asked: files, symbols, horizons and the bars' window."""

    news_path: Path
    bars: Mapping[str, Path]  # symbol -> bars file, the first symbol first
    horizons: tuple[str, ...] = ("1h", "4h", "1d")
    start: datetime | None = None
    end: datetime | None = None
    skip_bad_rows: bool = False
    progress: bool | None = False


@dataclass
class AnalysisRun:
    """The analysis.json document and what it cost (the benchmark reads the timings)."""

    document: dict[str, Any]
    n_news: int
    n_signals: int
    model_calls: int
    timings: dict[str, float] = field(default_factory=dict)


def parse_bars_options(
    values: Sequence[str], symbols: SymbolTable, default: str
) -> dict[str, Path]:
    """`--bars [SYMBOL=]FILE ...` as symbol -> file; a lone FILE is the first configured symbol.

    Each symbol once, each known to `[symbols]`: an unknown one would silently get only the
    market-wide items, since no news is ever tagged with it.
    """
    if not values:
        raise UserError("--bars [SYMBOL=]FILE is required (repeat it, one file per symbol)")
    chosen: dict[str, Path] = {}
    for value in values:
        symbol, sep, path = value.partition("=")
        if not sep or "/" in symbol or "\\" in symbol:  # a lone path that holds an "="
            symbol, path = default, value
        symbol = symbol.strip().upper()
        if not path.strip():
            raise UserError(f"--bars {value!r}: no file after {symbol}=")
        if symbol not in symbols.instruments:
            raise UserError(
                f"--bars {value!r}: {symbol} is not in [symbols] "
                f"(known: {', '.join(symbols.symbols)})"
            )
        if symbol in chosen:
            raise UserError(f"--bars: {symbol} given twice")
        chosen[symbol] = Path(path)
    return chosen


def parse_horizons(text: str) -> tuple[str, ...]:
    """`1h,4h,1d` as its horizons, spelled as given; a bad one is one clear line."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise UserError(f"--horizons {text!r}: no horizon given (e.g. 1h,4h,1d)")
    for name in names:
        try:
            parse_horizon(name)
        except ValueError as error:
            raise UserError(f"--horizons: {error}") from None
    if len(set(names)) != len(names):
        raise UserError(f"--horizons {text!r}: a horizon is given twice")
    return names


def check_horizons(bars: Mapping[str, Bars], horizons: Sequence[str]) -> None:
    """Every horizon a whole number of every symbol's bar interval; the error names both."""
    for symbol, symbol_bars in bars.items():
        for name in horizons:
            try:
                symbol_bars.check_horizon(name, parse_horizon(name))
            except ValueError as error:
                raise UserError(f"--horizons: {symbol}: {error}") from None


def run_analysis(
    settings: Settings, request: AnalysisRequest, options: StudyOptions | None = None
) -> AnalysisRun:
    """Read the files, produce the signals through the signal service, run the event study."""
    timings: dict[str, float] = {}
    began = time.perf_counter()
    symbols = SymbolTable.from_settings(settings)
    if request.start is not None and request.end is not None and request.end <= request.start:
        raise UserError(
            f"--to {request.end.isoformat()} is not after --from {request.start.isoformat()}"
        )
    news = assemble.read_news_file(request.news_path, symbols, skip_bad_rows=request.skip_bad_rows)
    bars = {
        symbol: read_bars(path, symbol, request.start, request.end, request.skip_bad_rows)
        for symbol, path in request.bars.items()
    }
    check_horizons(bars, request.horizons)  # before the model reads a single headline
    timings["read_s"] = time.perf_counter() - began
    began = time.perf_counter()
    first, path = next(iter(request.bars.items()))
    streamed = assemble.bars_file(path, first, skip_bad_rows=request.skip_bad_rows)  # lazy
    signals, model_calls = news_signals(
        settings, news, symbols, progress=request.progress, bars=streamed
    )
    timings["signals_s"] = time.perf_counter() - began
    titles = {item.id: item.title for item in news}
    arrays = SignalArrays.from_signals(signals, titles)
    chosen = replace(options or StudyOptions(), horizons=request.horizons)
    began = time.perf_counter()
    document = analyze(arrays, bars, chosen)
    timings["study_s"] = time.perf_counter() - began
    document["inputs"] = {
        "news": str(request.news_path),
        "news_items": len(news),
        "bars": {symbol: str(path) for symbol, path in request.bars.items()},
        "from": request.start.isoformat() if request.start else None,
        "to": request.end.isoformat() if request.end else None,
        "model_id": signals[0].model_id if signals else None,
        "market_wide_weight": settings.strategy.market_wide_weight,
    }
    return AnalysisRun(document, len(news), len(signals), model_calls, timings)


def news_signals(
    settings: Settings,
    news: Sequence[NewsItem],
    symbols: SymbolTable,
    *,
    progress: bool | None = False,
    bars: Iterable[Bar] = (),
) -> tuple[list[Signal], int]:
    """Every `Signal` the signal service emits for `news` in release order, on a replay clock,
    and how many model calls it took. The service is the one `bot.assemble` configures for the
    engine, so the tagging, market-wide weighting, model and cache are the backtest's. A
    market-aware (impact) model also gets `bars`, released in order between the items, as in a
    backtest: each item's context is the bars before it (other models never read them)."""
    model = assemble.build_model(settings)
    cache = assemble.signal_cache(settings)
    clock = ReplayClock()
    emitted: list[object] = []
    service = assemble.signal_service(settings, model, symbols, clock, emitted.append, cache)
    try:
        meter = Progress(len(news), "model", progress)
        try:
            asyncio.run(service.prefetch([item.text for item in news], meter.update))
        except ModelUnavailable as error:
            raise UserError(f"the model could not classify the news: {error}") from None
        finally:
            meter.close()
        for event in merge(news, bars) if service.reads_bars else news:
            clock.advance_to(event.ts)
            if isinstance(event, NewsItem):
                service.on_news(event)
            else:
                service.on_bar(event)
    finally:
        cache.close()
        asyncio.run(model.close())
    return [event for event in emitted if isinstance(event, Signal)], service.model_calls


def read_bars(
    path: Path, symbol: str, start: datetime | None, end: datetime | None, skip_bad_rows: bool
) -> Bars:
    """A bars file as the study's arrays: bars opening in [start, end), gaps kept as gaps."""
    opens: list[float] = []
    closes: list[float] = []
    times: list[datetime] = []
    interval = None
    for bar in assemble.bars_file(path, symbol, skip_bad_rows=skip_bad_rows):
        if interval is None:
            interval = bar.interval
        if (start is not None and bar.ts_open < start) or (end is not None and bar.ts_open >= end):
            continue
        times.append(bar.ts_open)
        opens.append(float(bar.open))
        closes.append(float(bar.close))
    if len(times) < 2:
        window = "" if start is None and end is None else " between --from and --to"
        raise InputError(f"{path}: {len(times)} bars{window}; the study needs at least 2")
    return Bars.build(np.asarray(times, dtype=object), opens, closes, interval=interval)
