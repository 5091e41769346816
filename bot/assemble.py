"""The one place where adapters are chosen from config and the object graph is built.

Replay, paper and live differ only in what is plugged in here — the clock, the broker and the
sources — while the graph itself (bus, signal service, strategy, risk gate, broker, portfolio,
store journal) comes from one function, `build_engine`. Two entry points hand out the parts:
`replay_parts` (a `ReplayClock`, the paper broker, no sources: the replay driver feeds parsed
events) and `live_parts` (a `LiveClock`, the paper or the Bybit broker, and the news and market
sources the daemon supervises). `tests/core/test_paper_vs_replay.py` holds the two to account.

This is the only module of `bot/` that imports `adapters`; it does so inside functions, so that
`import bot.assemble` stays light and a lexicon backtest never loads torch or aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from bot.bus import Bus
from bot.clock import Clock, LiveClock, ReplayClock
from bot.config import Secrets, Settings
from bot.engine import Engine
from bot.errors import UserError
from bot.events import Bar, NewsItem
from bot.journal import journal_to
from bot.latency import NewsToOrder
from bot.log import get_logger
from bot.parts import Parts, ReplayFiles, committing
from bot.portfolio import Portfolio
from bot.protocols import (
    Broker,
    LiveBroker,
    MarketStream,
    NewsSource,
    SentimentModel,
)
from bot.signals import MarketInputs, ModelReader, SignalCache, SignalService
from bot.symbols import SymbolTable
from bot.venue_exits import VenueExits
from strategies.exits import ExitBook, ExitRules
from strategies.margin import MarginRules
from strategies.protocol import Strategy
from strategies.risk import RiskGate
from strategies.vote_strategy import exit_rules, risk_params

if TYPE_CHECKING:
    from bot.console.service import Console
    from bot.store import Store  # sqlmodel/sqlalchemy: kept off `lorabot classify`'s imports

log = get_logger("bot.assemble")


# -- the model ------------------------------------------------------------------------------


def build_model(settings: Settings) -> SentimentModel:
    """The configured `SentimentModel` (adapters/model/factory.py; backends load lazily: a
    lexicon backtest or `lorabot status` never imports torch)."""
    from adapters.model.factory import build_model as build

    return build(settings)


def market_inputs(settings: Settings, model: SentimentModel) -> MarketInputs | None:
    """An impact model's market contexts, from the bars `build_engine` routes to `on_bar`."""
    from adapters.model.factory import market_inputs as inputs

    return inputs(settings, model)


def extra_models(settings: Settings, first: SentimentModel) -> list[ModelReader]:
    """`[[model.extra]]`: each built as `[model]` would be from its keys (one error line for a
    model configured twice)."""
    if not settings.model.extra:
        return []
    from adapters.model.factory import extra_readers

    return extra_readers(settings, first)


def signal_cache(settings: Settings) -> SignalCache:
    if not settings.model.cache:
        return SignalCache()
    return SignalCache(settings.cache_dir / "signals.sqlite")


# -- the graph -------------------------------------------------------------------------------


def paper_broker(settings: Settings, symbols: SymbolTable, clock: Clock) -> Broker:
    from adapters.paper import PaperBroker

    return PaperBroker(settings.paper, symbols, clock)


def feed_weights(settings: Settings) -> dict[str, float]:
    """Source name -> the weight its feed was given in [[news.feeds]]."""
    if not settings.news.feeds:
        return {}
    from adapters.news import feed_weights as weights

    return weights(settings.news.feeds)


def signal_service(
    settings: Settings,
    model: SentimentModel,
    symbols: SymbolTable,
    clock: Clock,
    emit: Callable[[object], None],
    cache: SignalCache | None = None,
    store: Store | None = None,
    also: Sequence[ModelReader] = (),
) -> SignalService:
    """The signal service as every mode configures it (tagging, market-wide weight, batching):
    the engine's, and `lorabot analyze`'s, which collects the signals instead of trading;
    `also`: the `[[model.extra]]` models (`extra_models`)."""
    model_config = settings.model
    return SignalService(
        model,
        symbols,
        clock,
        emit,
        cache=cache if cache is not None else signal_cache(settings),
        store=store,
        market_wide_weight=settings.strategy.market_wide_weight,
        batch_size=model_config.batch_size,
        max_wait=model_config.max_wait,
        max_pending=model_config.max_pending,
        timeout=model_config.timeout,
        market=market_inputs(settings, model),
        also=also,
    )


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
    journal_decisions: bool = True,
    exits_on_venue: bool = False,
) -> Parts:
    engine = wire_engine(
        settings, clock, bus, store, symbols, model, broker, traded, initial_cash, id_prefix, cache,
        exits_on_venue=exits_on_venue, also=extra_models(settings, model),
    )  # fmt: skip
    # after the engine: what it rejected is never journalled
    journal_to(store, bus, decisions=journal_decisions)
    return Parts(settings, clock, bus, store, symbols, model, engine.signals, broker, engine)


def wire_engine(
    settings: Settings, clock: Clock, bus: Bus, store: Store | None, symbols: SymbolTable,
    model: SentimentModel, broker: Broker, traded: Iterable[str], initial_cash: Decimal,
    id_prefix: str, cache: SignalCache | None, record_decisions: bool = True,
    exits_on_venue: bool = False, also: Sequence[ModelReader] = (),
) -> Engine:  # fmt: skip
    """The engine and its signal service: with a store (`build_engine`), or without one for a
    replay that keeps nothing (`bot.replay.trial_engine`: the first model's signals only)."""
    engine = Engine(
        settings=settings,
        clock=clock,
        bus=bus,
        store=store,
        symbols=symbols,
        signals=signal_service(settings, model, symbols, clock, bus.publish, cache, store, also),
        broker=broker,
        portfolio=Portfolio(initial_cash),
        strategy=build_strategy(settings),
        risk=RiskGate(risk_params(settings.risk)),
        traded=traded,
        id_prefix=id_prefix,
        exits=_exit_book(settings, exits_on_venue),
        margins=margin_rules(settings, symbols),
        record_decisions=record_decisions,
    )
    if engine.signals.reads_bars:  # an impact model reads the bars seen before an item
        bus.subscribe(Bar, engine.signals.on_bar)
    return engine


def build_strategy(settings: Settings) -> Strategy:
    """The strategy `[strategy] use` names (strategies/loader.py), or one error line."""
    from strategies.loader import StrategyError
    from strategies.loader import build_strategy as build

    try:
        return build(settings.strategy, feed_weights(settings))
    except StrategyError as error:
        raise UserError(str(error)) from None


def _exit_book(settings: Settings, on_venue: bool = False) -> ExitBook | None:
    """The engine's bar-by-bar exits; with `on_venue` (live perpetuals) only `max_hold`: the
    venue holds the price levels (bot/venue_exits.py)."""
    rules = exit_rules(settings.strategy)
    if on_venue:
        rules = ExitRules(max_hold=rules.max_hold)
    return ExitBook(rules, settings.strategy.atr_period) if rules.active else None


def margin_rules(settings: Settings, symbols: SymbolTable) -> dict[str, MarginRules]:
    """Per perpetual: its leverage, margin mode and maintenance rate (spot has no margin).
    A leverage above `[risk] max_leverage` is refused here, before anything trades."""
    rules: dict[str, MarginRules] = {}
    cap = settings.risk.max_leverage
    for name, config in settings.symbols.items():
        if not config.enabled or config.category != "linear" or name not in symbols.instruments:
            continue
        if config.leverage > cap:
            raise UserError(
                f"[symbols.{name}] leverage = {config.leverage} is above [risk] max_leverage "
                f"= {cap}"
            )
        rules[name] = MarginRules(
            config.leverage, config.margin_mode, config.maintenance_margin_rate
        )
    return rules


def replay_parts(
    settings: Settings,
    *,
    store: Store,
    symbols: SymbolTable,
    traded: Sequence[str],
    id_prefix: str,
    model: SentimentModel | None = None,
    cache: SignalCache | None = None,
    initial_cash: Decimal | None = None,
) -> Parts:
    """The graph for a replay: a `ReplayClock`, a strict bus (a handler error stops the run) and
    the paper broker. The caller's replay driver publishes the parsed events."""
    clock = ReplayClock()
    return build_engine(
        settings,
        clock=clock,
        bus=Bus(strict=True),
        store=store,
        symbols=symbols,
        model=model if model is not None else build_model(settings),
        broker=paper_broker(settings, symbols, clock),
        traded=traded,
        initial_cash=settings.engine.initial_cash if initial_cash is None else initial_cash,
        id_prefix=id_prefix,
        cache=cache,
        journal_decisions=False,  # a replay writes its decisions to decisions.csv
    )


# -- live ------------------------------------------------------------------------------------


async def live_parts(
    settings: Settings,
    *,
    mode: str,
    clock: LiveClock,
    bus: Bus,
    store: Store,
    account: str,
    id_prefix: str,
    confirm_mainnet: bool = False,
    replay: ReplayFiles | None = None,
    live_feeds: bool = True,
) -> Parts:
    """The graph for the daemon, with its sources: paper (simulated fills on live or replayed
    prices) or live (the Bybit broker, its rules fetched from the venue)."""
    symbols = SymbolTable.from_settings(settings)
    model = build_model(settings)
    live: LiveBroker | None = None
    broker: Broker
    if mode == "live":
        if replay is not None and replay.news is not None and real_money(settings):
            raise UserError(
                "--replay-news in live mode is for the simulator, testnet or demo: these "
                "[bybit] endpoints trade real money"
            )
        live, symbols = await _bybit_broker(settings, symbols, clock, confirm_mainnet)
        broker = live
    else:
        if replay is None or replay.bars is None:
            symbols = await _venue_rules(settings, symbols, clock)
        broker = paper_broker(settings, symbols, clock)
    initial = store.open_account(account, mode, settings.engine.initial_cash, clock.now())
    rules = exit_rules(settings.strategy)
    on_venue = live is not None and settings.bybit.category == "linear" and rules.active
    parts = build_engine(
        settings,
        clock=clock,
        bus=bus,
        store=store,
        symbols=symbols,
        model=model,
        broker=broker,
        traded=symbols.traded,
        initial_cash=initial,
        id_prefix=id_prefix,
        exits_on_venue=on_venue,
    )
    parts.live = live
    parts.latency = NewsToOrder(clock.monotonic)
    parts.latency.attach(bus, parts.engine.submit_listeners)
    if on_venue and live is not None:
        VenueExits(parts.engine, live, rules, settings.strategy.atr_period)
    if parts.signals.reads_bars and (replay is None or replay.bars is None):
        from adapters.bybit.history import fill_feature_windows  # the first item's features

        await fill_feature_windows(settings, parts.signals.readers, clock)
    parts.news_sources = _news_sources(settings, symbols, store, clock, replay, live_feeds)
    parts.market_streams = _market_streams(settings, symbols, clock, replay)
    return parts


def _news_sources(
    settings: Settings,
    symbols: SymbolTable,
    store: Store,
    clock: LiveClock,
    replay: ReplayFiles | None,
    live_feeds: bool,
) -> list[NewsSource]:
    sources: list[NewsSource] = []
    if replay is not None and replay.news is not None:
        from adapters.files.paced import PacedNews, common_origin

        origin = common_origin(
            replay.news, replay.bars, settings.default_symbol, skip_bad_rows=replay.skip_bad_rows
        )
        paced = PacedNews(
            replay.news,
            symbols,
            clock,
            speed=replay.speed,
            rebase=replay.rebase,
            known=store.news_ids,
            origin=origin,
            skip_bad_rows=replay.skip_bad_rows,
        )
        sources.append(committing(paced, store))
    enabled = [feed for feed in settings.news.feeds if feed.enabled]
    if enabled and live_feeds:
        from adapters.news.factory import feed_poller

        sources.append(feed_poller(settings, symbols, store, clock))  # it writes its own
    on_venue_prices = replay is None or replay.bars is None  # not beside a bar file's prices
    if settings.bybit.announcements.enabled and live_feeds and on_venue_prices:
        from adapters.bybit.announcements import BybitAnnouncements

        sources.append(BybitAnnouncements.from_settings(settings, store, symbols, clock=clock))
    return sources


def _market_streams(
    settings: Settings, symbols: SymbolTable, clock: LiveClock, replay: ReplayFiles | None
) -> list[MarketStream]:
    if replay is not None and replay.bars is not None:
        from adapters.files.paced import PacedBars, common_origin

        origin = common_origin(
            replay.news, replay.bars, settings.default_symbol, skip_bad_rows=replay.skip_bad_rows
        )
        return [
            PacedBars(
                replay.bars,
                settings.default_symbol,
                clock,
                speed=replay.speed,
                rebase=replay.rebase,
                origin=origin,
                skip_bad_rows=replay.skip_bad_rows,
            )
        ]
    from adapters.bybit.factory import public_stream

    return [public_stream(settings, symbols.traded, clock)]


async def _bybit_broker(
    settings: Settings, symbols: SymbolTable, clock: LiveClock, confirm_mainnet: bool
) -> tuple[LiveBroker, SymbolTable]:
    secrets = Secrets.from_env(settings.bybit)
    if not secrets.complete:
        raise UserError(
            f"live mode needs {settings.bybit.api_key_env} and {settings.bybit.api_secret_env} "
            "in the environment"
        )
    from adapters.bybit.factory import fetch_instruments, live_broker, require_mainnet_confirmation

    require_mainnet_confirmation(settings, confirm_mainnet)
    instruments = await fetch_instruments(settings, symbols.traded, clock)
    symbols = symbols.with_instruments(instruments)
    return live_broker(settings, secrets, instruments, clock), symbols


async def _venue_rules(settings: Settings, symbols: SymbolTable, clock: LiveClock) -> SymbolTable:
    """Paper mode on live prices trades by the venue's real filters when it can read them."""
    from adapters.bybit.factory import fetch_instruments

    try:
        instruments = await asyncio.wait_for(
            fetch_instruments(settings, symbols.traded, clock), settings.bybit.rest_timeout * 2
        )
    except Exception as error:  # offline, or Bybit unreachable: the config's rules stand
        log.warning("instrument rules from config (Bybit unreachable)", error=str(error))
        return symbols
    return symbols.with_instruments(instruments)


def real_money(settings: Settings) -> bool:
    """Whether orders would reach a real-money venue: the Bybit adapter's one predicate."""
    from adapters.bybit.factory import endpoints

    return endpoints(settings).is_mainnet


def live_summary(settings: Settings, symbols: SymbolTable, account: str) -> tuple[bool, str]:
    """(real money?, what lorabot is about to do): shown before the first order of a live run.
    Real money is the venue adapter's one predicate, decided from the hosts it will talk to."""
    from adapters.bybit.factory import endpoints, mainnet_summary

    urls = endpoints(settings)
    if real_money(settings):
        return True, mainnet_summary(settings, symbols.traded)
    text = "\n".join(
        [
            f"lorabot trades on Bybit {settings.bybit.network} at {urls.rest} "
            f"({settings.bybit.category}) as account {account!r}:",
            f"  symbols: {', '.join(symbols.traded)}",
            f"  sizing: {settings.strategy.fraction:.0%} of equity x confidence, at most "
            f"{settings.strategy.max_fraction:.0%}; max notional {settings.risk.max_notional} "
            f"{settings.engine.quote_currency} per symbol",
            f"  risk: max daily loss {settings.risk.max_daily_loss:.0%}, "
            f"{settings.risk.max_orders_per_minute} orders/min; kill switch: "
            f"{settings.kill_switch_path} (`lorabot kill`)",
        ]
    )
    return False, text


# -- historical files (the backtest's sources; the readers live in adapters/files) ------------


def read_news_file(
    path: Path, symbols: SymbolTable, *, skip_bad_rows: bool = False
) -> list[NewsItem]:
    """A news file's items in release order, checked (`adapters.files.read_news`)."""
    from adapters.files import read_news

    return read_news(path, symbols, skip_bad_rows=skip_bad_rows)


def funding_file(path: Path) -> dict[str, dict[int, Decimal]]:
    """A funding file's rates per symbol and settlement time (`adapters.files.funding`)."""
    from adapters.files.funding import read_funding

    return read_funding(path)


def bars_file(path: Path, symbol: str, *, skip_bad_rows: bool = False) -> Iterator[Bar]:
    """A bars file's bars, checked as they stream (`adapters.files.iter_bars`)."""
    from adapters.files import iter_bars

    return iter_bars(path, symbol, skip_bad_rows=skip_bad_rows)


def estimate_bars(path: Path) -> int:
    """About how many bars a file holds, from its size (sizes a progress bar; no second read)."""
    from adapters.files.bars import estimate_rows

    return estimate_rows(path)


def attach_telegram(settings: Settings, console: Console) -> None:
    """Telegram's notifications and commands, on the daemon's console (`[telegram] enabled`)."""
    from adapters.telegram.bot import TelegramCompanion

    TelegramCompanion.from_settings(settings.telegram, console).attach()
