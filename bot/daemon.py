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
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.assemble import Parts, ReplayFiles, attach_telegram, live_parts, live_summary
from bot.bus import Bus
from bot.clock import LiveClock
from bot.config import Settings
from bot.errors import FatalError
from bot.events import Bar, NewsItem, Ticker, Trade
from bot.log import get_logger
from bot.protocols import Publish, VenueState
from bot.shutdown import stop_on_signals
from bot.store import Store
from bot.trade_log import TradeLog

if TYPE_CHECKING:
    from bot.console.service import Console

__all__ = ["DaemonOptions", "ReplayFiles", "account_name", "run_daemon"]

log = get_logger("bot.daemon")
_CENT = Decimal("0.01")
_CONSOLE_TICK = timedelta(seconds=1)  # the console's snapshot, heartbeat and watchdog ping


@dataclass
class DaemonOptions:
    mode: str = "paper"
    confirm_mainnet: bool = False
    account: str | None = None
    replay: ReplayFiles | None = None
    live_feeds: bool = True
    sd_notify: bool = False  # `--sd-notify`: READY=1, STATUS= and WATCHDOG=1 to systemd


def account_name(settings: Settings, options: DaemonOptions) -> str:
    if options.account:
        return options.account
    if options.mode == "live":
        return f"live-{settings.bybit.network}-{settings.bybit.category}"
    return "paper"


async def _supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    initial: float,
    maximum: float,
    on_failure: Callable[[str, str], None] | None = None,
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
            if on_failure is not None:
                on_failure(name, str(error) or repr(error))
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(maximum, delay * 2)


def _announce(parts: Parts, mode: str, account: str) -> None:
    """Before the first order of a live run: what, where, how big, and how to stop it (a log
    event, so stderr stays one JSON object a line)."""
    if mode != "live":
        return
    real_money, text = live_summary(parts.settings, parts.symbols, account)
    if real_money:
        log.warning("live trading with REAL MONEY", summary=text)
    else:
        log.info("live trading", summary=text)


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
    store.acquire_run_lock()  # one daemon per store: a second one stops here, naming the first
    parts = await live_parts(
        settings,
        mode=options.mode,
        clock=clock,
        bus=bus,
        store=store,
        account=account,
        id_prefix=f"lb{run_id[:8]}",
        confirm_mainnet=options.confirm_mainnet,
        replay=options.replay,
        live_feeds=options.live_feeds,
    )
    engine, broker, model, symbols = parts.engine, parts.broker, parts.model, parts.symbols
    TradeLog("info").attach(bus)
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
    _announce(parts, options.mode, account)

    fatal: list[BaseException] = []

    console = _console(settings, parts, options, account, run_id)

    def on_fatal(error: BaseException) -> None:
        log.error("fatal broker error: stopping", error=str(error))
        fatal.append(error)
        stop.set()

    def on_store_failure(error: BaseException) -> None:
        log.error("store commit failed: trading halted, stopping", error=str(error))
        engine.halt()  # no flattening: an order that cannot be recorded is never sent
        fatal.append(error)
        stop.set()

    store.on_failure(on_store_failure)
    if parts.live is not None:
        parts.live.on_fatal = on_fatal
    await model.start()  # load the weights now, not when the first headline arrives
    await parts.signals.start_extra_models()  # and those of [[model.extra]]
    await broker.start()
    venue = await broker.reconcile(state.open_orders if state else [])
    if venue is not None:
        adopt_venue_state(parts, venue)
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
    sources: list[tuple[str, Callable[[Publish], Awaitable[None]]]] = [
        *((s.name, s.run) for s in parts.news_sources),
        *((type(s).__name__, s.run) for s in parts.market_streams),
    ]
    source_tasks = [
        asyncio.create_task(
            _supervise(
                name,
                functools.partial(run, bus.put),
                min(backoff[0], 5.0),
                backoff[1],
                console.source_failed if console is not None else None,
            ),
            name=f"source:{name}",
        )
        for name, run in sources
    ]
    if not sources:
        log.warning("no sources: nothing will arrive (configure [[news.feeds]] and [bybit])")
    pending = store.pending_news()
    if pending:
        log.info("re-queueing news the model had not answered", items=len(pending))
        parts.signals.retry_pending(pending)
    if console is not None:
        console.start()
        timers = [*timers, clock.schedule_every(_CONSOLE_TICK, console.tick, "console")]
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
        if console is not None:
            if fatal:
                console.fatal(fatal[0])
            console.stop()
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
        await parts.signals.close_extra_models()
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


def _console(
    settings: Settings, parts: Parts, options: DaemonOptions, account: str, run_id: str
) -> Console | None:
    """The operator's console (`bot/console/`), Telegram on it when configured."""
    from bot.console.service import build_console
    from bot.console.state import RunInfo

    info = RunInfo(
        options.mode, account, run_id, parts.clock.now(), parts.model.model_id, parts.symbols.traded
    )
    console = build_console(settings, parts, info, options.sd_notify)
    if console is not None and settings.telegram.enabled:
        attach_telegram(settings, console)
    return console


def adopt_venue_state(parts: Parts, venue: VenueState) -> None:
    """Take the venue's word, and keep it: the reconciled state is what `lorabot status` shows
    for a live account (the stored fills alone miss what changed on the venue)."""
    parts.engine.apply_venue_state(venue)
    if parts.live is None:
        return  # the paper venue is the store itself: nothing new to keep
    now = parts.clock.now()
    parts.store.record_reconciliation(now, venue.positions, venue.cash)
    parts.engine.snapshot(now, source="venue")


class _Reconciler:
    """Reconciles with the venue on a schedule, and soon after the broker asks for it (it saw an
    execution of an order lorabot did not place). The paper broker never asks."""

    def __init__(self, parts: Parts, interval: float) -> None:
        self.parts = parts
        self.interval = interval
        self.last = parts.clock.now()
        self.task: asyncio.Task[None] | None = None

    def tick(self, now: Any) -> None:
        live = self.parts.live
        due = (live is not None and live.needs_reconcile) or (
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
            adopt_venue_state(self.parts, venue)

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
        engine.set_kill_switch(kill_path.exists() or store.failed)

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


def _safe_url(url: str) -> str:
    """A store URL for the log, without a password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"
