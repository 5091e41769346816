"""The one place where an engine is assembled from config.

Replay, paper and live differ only in what is passed in here (clock, broker, sources); the object
graph — bus, signal service, vote, risk gate, broker, portfolio, store — is the same, built by
the same function. `tests/test_paper_vs_replay.py` holds this to account.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from bot.bus import Bus
from bot.clock import Clock
from bot.config import Settings
from bot.engine import Engine
from bot.events import Bar, NewsItem
from bot.portfolio import Portfolio
from bot.protocols import Broker, SentimentModel
from bot.signals import SignalCache, SignalService
from bot.store import Store
from bot.symbols import SymbolTable


@dataclass
class Parts:
    settings: Settings
    clock: Clock
    bus: Bus
    store: Store
    symbols: SymbolTable
    model: SentimentModel
    signals: SignalService
    broker: Broker
    engine: Engine


def signal_cache(settings: Settings) -> SignalCache:
    if not settings.model.cache:
        return SignalCache()
    return SignalCache(settings.cache_dir / "signals.sqlite")


def paper_broker(settings: Settings, symbols: SymbolTable, clock: Clock) -> Broker:
    from adapters.paper import PaperBroker

    return PaperBroker(settings.paper, symbols, clock)


def feed_weights(settings: Settings) -> dict[str, float]:
    """Source name -> the weight its feed was given in [[news.feeds]]."""
    if not settings.news.feeds:
        return {}
    from adapters.news import feed_weights as weights

    return weights(settings.news.feeds)


def build_engine(
    settings: Settings,
    *,
    clock: Clock,
    bus: Bus,
    store: Store,
    symbols: SymbolTable,
    model: SentimentModel,
    broker: Broker,
    traded: Iterable[str],
    initial_cash: Decimal,
    id_prefix: str,
    cache: SignalCache | None = None,
) -> Parts:
    model_config = settings.model
    signals = SignalService(
        model,
        symbols,
        clock,
        bus.publish,
        cache=cache if cache is not None else signal_cache(settings),
        store=store,
        market_wide_weight=settings.strategy.market_wide_weight,
        batch_size=model_config.batch_size,
        max_wait=model_config.max_wait,
        max_pending=model_config.max_pending,
        timeout=model_config.timeout,
    )
    engine = Engine(
        feed_weights=feed_weights(settings),
        settings=settings,
        clock=clock,
        bus=bus,
        store=store,
        symbols=symbols,
        signals=signals,
        broker=broker,
        portfolio=Portfolio(initial_cash),
        traded=traded,
        id_prefix=id_prefix,
    )
    return Parts(settings, clock, bus, store, symbols, model, signals, broker, engine)


# -- historical files (the backtest's sources; the readers live in adapters/files) ------------


def read_news_file(
    path: Path, symbols: SymbolTable, *, skip_bad_rows: bool = False
) -> list[NewsItem]:
    """A news file's items in release order, checked (`adapters.files.read_news`)."""
    from adapters.files import read_news

    return read_news(path, symbols, skip_bad_rows=skip_bad_rows)


def bars_file(path: Path, symbol: str, *, skip_bad_rows: bool = False) -> Iterator[Bar]:
    """A bars file's bars, checked as they stream (`adapters.files.iter_bars`)."""
    from adapters.files import iter_bars

    return iter_bars(path, symbol, skip_bad_rows=skip_bad_rows)


def estimate_bars(path: Path) -> int:
    """About how many bars a file holds, from its size (sizes a progress bar; no second read)."""
    from adapters.files.bars import estimate_rows

    return estimate_rows(path)
