"""The trading daemon: the engine on a live clock, fed by live sources, until told to stop.

What it guarantees, and how:
- Nothing acknowledged is only in memory: orders are committed before they are sent, fills as
  they arrive, news and signals within `[store] commit_interval`. After a crash (even SIGKILL) a
  restart rebuilds positions and cash from the stored fills, resumes open orders, reconciles with
  the venue, and re-asks the model for news it had not answered.
- A source that fails (feed down, exchange unreachable) is logged and retried with backoff; it
  never takes the daemon down. SIGINT/SIGTERM stop it cleanly: sources first, then the queues
  drain, then a last snapshot and commit.
- Live trading on mainnet needs `--confirm-mainnet` on top of the keys, and says what it is about
  to do before the first order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.assemble import Parts, build_engine, paper_broker
from bot.bus import Bus
from bot.clock import LiveClock
from bot.config import Secrets, Settings
from bot.errors import FatalError, UserError
from bot.events import Bar, NewsItem, Ticker, Trade
from bot.log import get_logger
from bot.models import build_model
from bot.protocols import Broker, MarketStream, NewsSource
from bot.shutdown import stop_on_signals
from bot.store import Store
from bot.symbols import SymbolTable

log = get_logger("bot.daemon")
_CENT = Decimal("0.01")


@dataclass
class ReplayFiles:
    """`lorabot run --replay-news/--replay-bars`: files played out as live sources."""

    news: Path | None = None
    bars: Path | None = None
    speed: float = 1.0
    rebase: bool = True


@dataclass
class DaemonOptions:
    mode: str = "paper"
    confirm_mainnet: bool = False
    account: str | None = None
    replay: ReplayFiles | None = None
    extra_sources: list[Any] = field(default_factory=list)
    live_feeds: bool = True


def account_name(settings: Settings, options: DaemonOptions) -> str:
    if options.account:
        return options.account
    if options.mode == "live":
        return f"live-{settings.bybit.network}-{settings.bybit.category}"
    return "paper"


async def _supervise(
    name: str, run: Callable[[], Awaitable[None]], initial: float, maximum: float
) -> None:
    """Keep a source running: log its failures and restart it with jittered backoff."""
    delay = initial
    while True:
        try:
            await run()
            log.info("source finished", source=name)
            return
        except asyncio.CancelledError:
            raise
        except FatalError:
            raise
        except Exception as error:
            log.error(
                "source failed; retrying",
                source=name,
                error=str(error) or repr(error),
                retry_in_s=round(delay, 3),
            )
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(maximum, delay * 2)


def _news_sources(
    settings: Settings, symbols: SymbolTable, store: Store, clock: LiveClock, options: DaemonOptions
) -> list[NewsSource]:
    sources: list[NewsSource] = []
    replay = options.replay
    if replay is not None and replay.news is not None:
        from adapters.files.paced import PacedNews, common_origin

        origin = common_origin(replay.news, replay.bars, settings.default_symbol)
        sources.append(
            PacedNews(
                replay.news,
                symbols,
                clock,
                speed=replay.speed,
                rebase=replay.rebase,
                known=store.news_ids,
                origin=origin,
            )
        )
    enabled = [feed for feed in settings.news.feeds if feed.enabled]
    if enabled and options.live_feeds:
        try:
            from adapters.news.factory import feed_poller
        except ImportError:
            log.warning("feeds are configured but the news adapter is not installed")
        else:
            sources.append(feed_poller(settings, symbols, store))
    return sources


def _market_streams(
    settings: Settings, symbols: SymbolTable, clock: LiveClock, options: DaemonOptions
) -> list[MarketStream]:
    replay = options.replay
    if replay is not None and replay.bars is not None:
        from adapters.files.paced import PacedBars, common_origin

        origin = common_origin(replay.news, replay.bars, settings.default_symbol)
        return [
            PacedBars(
                replay.bars,
                settings.default_symbol,
                clock,
                speed=replay.speed,
                rebase=replay.rebase,
                origin=origin,
            )
        ]
    try:
        from adapters.bybit.factory import public_stream
    except ImportError:
        log.warning("no market data: the Bybit adapter is not installed")
        return []
    return [public_stream(settings, symbols.traded)]


async def _live_broker(
    settings: Settings, symbols: SymbolTable, options: DaemonOptions
) -> tuple[Broker, SymbolTable]:
    secrets = Secrets.from_env(settings.bybit)
    if not secrets.complete:
        raise UserError(
            f"live mode needs {settings.bybit.api_key_env} and {settings.bybit.api_secret_env} "
            "in the environment"
        )
    try:
        from adapters.bybit.factory import (
            fetch_instruments,
            live_broker,
            require_mainnet_confirmation,
        )
    except ImportError as error:
        raise UserError(f"live trading needs the Bybit adapter: {error}") from None
    require_mainnet_confirmation(settings, options.confirm_mainnet)
    instruments = await fetch_instruments(settings, symbols.traded)
    symbols = symbols.with_instruments(instruments)
    return live_broker(settings, secrets, instruments), symbols


async def _venue_rules(settings: Settings, symbols: SymbolTable) -> SymbolTable:
    """Paper mode on live prices trades by the venue's real filters when it can read them."""
    try:
        from adapters.bybit.factory import fetch_instruments
    except ImportError:
        return symbols
    try:
        instruments = await asyncio.wait_for(
            fetch_instruments(settings, symbols.traded), settings.bybit.rest_timeout * 2
        )
    except Exception as error:  # offline, or Bybit unreachable: the config's rules stand
        log.warning("instrument rules from config (Bybit unreachable)", error=str(error))
        return symbols
    return symbols.with_instruments(instruments)


def _announce(
    settings: Settings, symbols: SymbolTable, options: DaemonOptions, account: str
) -> None:
    """Before the first order of a live run: what, where, how big, and how to stop it."""
    if options.mode != "live":
        return
    from adapters.bybit.factory import endpoints, mainnet_summary

    urls = endpoints(settings)
    if urls.is_mainnet:
        text = mainnet_summary(settings, symbols.traded)
    else:
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
    print(text, file=sys.stderr, flush=True)


async def run_daemon(
    settings: Settings,
    options: DaemonOptions,
    stop: asyncio.Event | None = None,
    ready: Callable[[Parts], None] | None = None,
) -> Parts:
    """Run until `stop` is set (or SIGINT/SIGTERM); returns the parts for inspection."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop.set)

    clock = LiveClock()
    bus = Bus(strict=False)
    queue_size = settings.engine.queue_size
    bus.add_topic("news", (NewsItem,), queue_size, "block")
    bus.add_topic("market", (Bar, Trade, Ticker), queue_size, settings.engine.market_overflow)
    run_id = uuid.uuid4().hex[:12]
    account = account_name(settings, options)
    store = Store(
        settings.store_url,
        account=account,
        run_id=run_id,
        durable=True,
        commit_every=settings.store.commit_every,
    )
    symbols = SymbolTable.from_settings(settings)
    model = build_model(settings)
    if options.mode == "live":
        broker, symbols = await _live_broker(settings, symbols, options)
    else:
        if options.replay is None or options.replay.bars is None:
            symbols = await _venue_rules(settings, symbols)
        broker = paper_broker(settings, symbols, clock)
    initial = store.open_account(account, options.mode, settings.engine.initial_cash, clock.now())
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
        id_prefix=f"lb{run_id[:8]}",
    )
    engine = parts.engine
    state = store.load_account(account)
    if state is not None:
        engine.resume(state)
    store.start_run(run_id, options.mode, clock.now(), settings.to_toml_dict())
    log.info(
        "daemon starting",
        mode=options.mode,
        account=account,
        run_id=run_id,
        store=_safe_url(settings.store_url),
        model=model.model_id,
        symbols=list(symbols.traded),
    )
    _announce(settings, symbols, options, account)

    fatal: list[BaseException] = []

    def on_fatal(error: BaseException) -> None:
        log.error("fatal broker error: stopping", error=str(error))
        fatal.append(error)
        stop.set()

    if hasattr(broker, "on_fatal"):
        broker.on_fatal = on_fatal
    start = getattr(model, "start", None)
    if start is not None:  # load the weights now, not when the first headline arrives
        await start()
    await broker.start()
    venue = await broker.reconcile(state.open_orders if state else [])
    if venue is not None:
        engine.apply_venue_state(venue)
    parts.signals.start_live()
    engine.start_timers()
    timers = _start_timers(settings, parts)
    reconciler = _Reconciler(parts, settings.engine.reconcile_interval)
    if options.mode == "live":
        timers = [*timers, clock.schedule_every(timedelta(seconds=5), reconciler.tick, "reconcile")]

    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(bus.run(), name="bus"),
        asyncio.create_task(parts.signals.run(), name="signals"),
    ]
    backoff = (settings.news.backoff_initial, settings.news.backoff_max)
    sources: list[Any] = [
        *_news_sources(settings, symbols, store, clock, options),
        *_market_streams(settings, symbols, clock, options),
        *options.extra_sources,
    ]
    source_tasks = [
        asyncio.create_task(
            _supervise(
                _source_name(s), functools.partial(s.run, bus.put), min(backoff[0], 5.0), backoff[1]
            ),
            name=f"source:{_source_name(s)}",
        )
        for s in sources
    ]
    if not sources:
        log.warning("no sources: nothing will arrive (configure [[news.feeds]] and [bybit])")
    pending = store.pending_news()
    if pending:
        log.info("re-queueing news the model had not answered", items=len(pending))
        parts.signals.retry_pending(pending)
    if ready is not None:
        ready(parts)

    stopper = asyncio.create_task(stop.wait(), name="stop")
    watched = [stopper, *tasks]
    try:
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        log.info("daemon stopping")
        for task in source_tasks:
            task.cancel()
        await asyncio.gather(*source_tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bus.join(), settings.engine.shutdown_timeout)
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        for timer in timers:
            timer.cancel()
        with contextlib.suppress(Exception):
            await broker.stop()
        engine.snapshot()
        store.end_run(clock.now(), "stopped")
        await model.close()
        store.close()
        parts.signals.cache.close()
        log.info(
            "daemon stopped",
            equity=str(engine.portfolio.equity),
            positions={s: str(p.qty) for s, p in engine.portfolio.positions.items() if p.qty},
        )
    if fatal:
        raise FatalError(f"stopped: {fatal[0]}")
    return parts


class _Reconciler:
    """Reconciles with the venue on a schedule, and soon after the broker asks for it (it saw an
    execution of an order lorabot did not place). The paper broker never asks."""

    def __init__(self, parts: Parts, interval: float) -> None:
        self.parts = parts
        self.interval = interval
        self.last = parts.clock.now()
        self.task: asyncio.Task[None] | None = None

    def tick(self, now: Any) -> None:
        broker = self.parts.broker
        due = getattr(broker, "needs_reconcile", False) or (
            self.interval > 0 and (now - self.last).total_seconds() >= self.interval
        )
        if due and (self.task is None or self.task.done()):
            self.last = now
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        engine = self.parts.engine
        try:
            open_orders = [o for o in engine.orders.values() if o.is_open]
            venue = await self.parts.broker.reconcile(open_orders)
        except Exception as error:
            log.warning("reconciliation failed; will retry", error=str(error))
            return
        if venue is not None:
            engine.apply_venue_state(venue)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


def _start_timers(settings: Settings, parts: Parts) -> Sequence[Any]:
    clock, store, engine, signals, bus = (
        parts.clock,
        parts.store,
        parts.engine,
        parts.signals,
        parts.bus,
    )
    kill_path = settings.kill_switch_path

    def flush(_: Any) -> None:
        store.flush()

    def retry(_: Any) -> None:
        items = store.pending_news()
        if items:
            count = signals.retry_pending(items)
            if count:
                log.info("retrying news the model has not answered", items=count)

    def kill(_: Any) -> None:
        engine.set_kill_switch(kill_path.exists())

    def heartbeat(_: Any) -> None:
        portfolio = engine.portfolio
        log.info(
            "alive",
            equity=str(portfolio.equity.quantize(_CENT)),
            cash=str(portfolio.cash.quantize(_CENT)),
            positions={s: str(p.qty) for s, p in portfolio.positions.items() if p.qty},
            open_orders=sum(len(v) for v in engine.open_orders.values()),
            queues=bus.stats(),
            model_calls=signals.model_calls,
            halted=engine.risk.halt_reason() or None,
        )

    kill(None)
    every = timedelta
    return [
        clock.schedule_every(every(seconds=settings.store.commit_interval), flush, "flush"),
        clock.schedule_every(every(seconds=settings.engine.retry_interval), retry, "retry"),
        clock.schedule_every(every(seconds=settings.risk.kill_switch_poll), kill, "kill"),
        clock.schedule_every(
            every(seconds=settings.engine.heartbeat_interval), heartbeat, "heartbeat"
        ),
    ]


def _source_name(source: Any) -> str:
    return str(getattr(source, "name", type(source).__name__))


def _safe_url(url: str) -> str:
    """A store URL for the log, without a password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"
