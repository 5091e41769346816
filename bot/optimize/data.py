"""A hyperopt worker's data: parsed once, every model answer cached before the first trial.

Trials differ only in the strategy's parameters, so the news and bars are read once per worker
(forked workers share them), the model is asked about every headline once (through the run's
signal cache, so a second hyperopt on the same news asks nothing), and each trial replays from
memory with those answers in a memory-only `SignalCache` (keys already normalised, so it is
filled directly rather than through `bot.replay.given_signals`): no trial ever runs the model.

`replay_span` is the one function a trial replays through (the backtest's replay driver,
`bot.replay.replay`, on an in-memory store, as the null models do); swap its body for a faster
in-memory entry and every trial follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot import assemble
from bot.backtest import funding_schedule
from bot.config import Settings
from bot.engine import Engine
from bot.errors import InputError, UserError
from bot.events import Bar, NewsItem
from bot.protocols import ModelUnavailable, SentimentModel
from bot.recording import Recording
from bot.replay import prefetch, replay_in_memory
from bot.signals import SignalCache, normalise
from bot.store import Store
from bot.symbols import SymbolTable

MICROSECOND = timedelta(microseconds=1)


@dataclass
class TrialData:
    settings: Settings
    symbols: SymbolTable
    symbol: str
    news: list[NewsItem]
    bars: list[Bar]
    model: SentimentModel
    answers: SignalCache  # memory only: every headline's answer
    files: list[Path]
    start: datetime  # the first bar's open
    end: datetime  # the last bar's close

    def close(self) -> None:
        asyncio.run(self.model.close())


def load(
    settings: Settings,
    *,
    news_path: Path,
    bars_path: Path,
    symbol: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: bool | None = False,
) -> TrialData:
    """Read both files, keep what lies in [start, end], and cache every headline's answer."""
    symbols = SymbolTable.from_settings(settings)
    symbol = symbol or settings.default_symbol
    if symbol not in symbols.instruments:
        raise UserError(
            f"--symbol {symbol}: not in [symbols] (known: {', '.join(symbols.symbols)})"
        )
    news = [
        item
        for item in assemble.read_news_file(news_path, symbols)
        if (start is None or item.received >= start) and (end is None or item.received <= end)
    ]
    bars = [
        bar
        for bar in assemble.bars_file(bars_path, symbol)
        if (start is None or bar.ts >= start) and (end is None or bar.ts <= end)
    ]
    if len(bars) < 2:
        raise InputError(f"{bars_path}: fewer than two bars to tune on")
    model = assemble.build_model(settings)
    answers = _cached_answers(settings, symbols, symbol, model, news, progress)
    return TrialData(
        settings,
        symbols,
        symbol,
        news,
        bars,
        model,
        answers,
        [bars_path, news_path],
        bars[0].ts_open,
        bars[-1].ts,
    )


def _cached_answers(
    settings: Settings,
    symbols: SymbolTable,
    symbol: str,
    model: SentimentModel,
    news: Sequence[NewsItem],
    progress: bool | None,
) -> SignalCache:
    """Ask the model (through the run's signal cache) about every headline once; the answers
    as a memory-only source."""
    cache = assemble.signal_cache(settings)
    store = Store("sqlite://", account="hyperopt-prefetch", durable=False)
    try:
        parts = assemble.replay_parts(
            settings,
            store=store,
            symbols=symbols,
            traded=[symbol],
            id_prefix="prefetch",
            model=model,
            cache=cache,
        )
        texts = [item.text for item in news]
        try:
            prefetch(parts, texts, progress)
        except ModelUnavailable as error:
            raise UserError(f"the model could not classify the news: {error}") from None
        found = cache.get_many(model.model_id, {normalise(text) for text in texts})
    finally:
        store.close()
        cache.close()
    memory = SignalCache()
    memory.put_many(model.model_id, sorted(found.items()))
    return memory


def replay_span(
    data: TrialData,
    settings: Settings,
    start: datetime,
    end: datetime,
    on_engine: Callable[[Engine], None] | None = None,
) -> Recording:
    """One trial: `settings` replayed over [start, end) from memory through the one replay
    driver (`bot.replay.replay_in_memory`: no store, no journal, no model call)."""
    can_short = data.symbols.instruments[data.symbol].can_short
    return replay_in_memory(
        settings,
        bars=data.bars,
        news=data.news,
        signals=data.answers,
        model=data.model,
        symbol=data.symbol,
        symbols=data.symbols,
        start=start,
        end=end - MICROSECOND,  # half-open: the next span's first event is not in this one
        funding=funding_schedule(settings, None, can_short),
        on_engine=on_engine,
    ).recording
