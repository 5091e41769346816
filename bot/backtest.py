"""The replay backtest: historical news and bars through the very engine the daemon runs.

The only things that differ from paper mode are the `ReplayClock` (time moves to each event's
release time, firing the engine's timers on the way) and the sources (files). Dispatch is
synchronous through the same bus and objects, in the same order, so the same inputs give
byte-identical trades. The model is asked once per distinct text before the replay starts
(batched, cached on disk), and the signal service then reads its answers from the cache in
event order.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np

from bot.assemble import Parts, build_engine, build_model, paper_broker
from bot.bus import Bus
from bot.clock import ReplayClock
from bot.config import Settings
from bot.errors import InputError, UserError
from bot.events import Bar, Fill
from bot.log import get_logger
from bot.metrics import RoundTrips
from bot.portfolio import FillEffect
from bot.protocols import ModelUnavailable
from bot.replay import iter_bars, merge, read_news, window
from bot.store import Store
from bot.symbols import SymbolTable

log = get_logger("bot.backtest")

ProgressFactory = Callable[[int | None, str], "Progress"]


class Progress:
    """A progress bar on stderr (tqdm); silent when stderr is not a terminal."""

    def __init__(self, total: int | None, description: str, enabled: bool | None = None) -> None:
        from tqdm import tqdm

        disable = None if enabled is None else not enabled  # None: only on a terminal
        self._bar = tqdm(
            total=total,
            desc=description,
            unit=" ev",
            unit_scale=True,
            disable=disable,
            leave=False,
            mininterval=0.25,
        )

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


@dataclass
class TradeRow:
    ts: datetime
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    liquidity: str
    realised_pnl: Decimal
    position: Decimal
    avg_entry: Decimal
    reason: str


@dataclass
class Recording:
    """What the report needs, gathered as the replay runs."""

    times: list[datetime] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    closes: list[float] = field(default_factory=list)
    exposed: list[bool] = field(default_factory=list)
    trades: list[TradeRow] = field(default_factory=list)
    round_trips: RoundTrips = field(default_factory=RoundTrips)
    n_news: int = 0
    n_bars: int = 0


@dataclass
class BacktestResult:
    run_id: str
    symbol: str
    out_dir: Path
    settings: Settings
    recording: Recording
    metrics: dict[str, object]
    parts: Parts
    elapsed_s: float = 0.0  # the whole call (reporting only; nothing decides on it)
    replay_s: float = 0.0  # the event loop alone


def count_lines(path: Path) -> int:
    total = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            total += chunk.count(b"\n")
    return total


def run_backtest(
    settings: Settings,
    *,
    bars_path: Path,
    news_path: Path | None,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    out_dir: Path,
    progress: bool | None = None,
    run_id: str | None = None,
) -> BacktestResult:
    began = time.perf_counter()
    symbols = SymbolTable.from_settings(settings)
    symbol = symbol or settings.default_symbol
    if symbol not in symbols.instruments:
        raise UserError(
            f"--symbol {symbol}: not in [symbols] (known: {', '.join(symbols.symbols)})"
        )
    news = read_news(news_path, symbols) if news_path else []
    if start is not None and end is not None and end <= start:
        raise UserError(f"--to {end.isoformat()} is not after --from {start.isoformat()}")
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_id or uuid.uuid4().hex[:12]

    clock = ReplayClock()
    bus = Bus(strict=True)
    store_path = out_dir / "store.sqlite"
    for stale in (store_path, out_dir / "store.sqlite-wal", out_dir / "store.sqlite-shm"):
        stale.unlink(missing_ok=True)
    store = Store(
        f"sqlite:///{store_path}",
        account=f"backtest-{run_id}",
        run_id=run_id,
        durable=False,
        commit_every=max(settings.store.commit_every, 4096),
    )
    model = build_model(settings)
    parts = build_engine(
        settings,
        clock=clock,
        bus=bus,
        store=store,
        symbols=symbols,
        model=model,
        broker=paper_broker(settings, symbols, clock),
        traded=[symbol],
        initial_cash=settings.engine.initial_cash,
        id_prefix=f"bt{run_id[:8]}",
    )
    engine = parts.engine
    texts = [item.text for item in news if start is None or item.received >= start]
    try:
        asyncio.run(_prefetch(parts, texts, progress))
    except ModelUnavailable as error:
        raise UserError(f"the model could not classify the news: {error}") from None

    recording = Recording()
    engine.fill_listeners.append(_trade_recorder(recording, engine))
    bars = iter_bars(bars_path, symbol)
    events = window(merge(news, bars), start, end)
    bar_lines = count_lines(bars_path)
    bar = None
    meter = Progress(bar_lines + len(news), f"replay {symbol}", progress)
    portfolio = engine.portfolio
    pending = 0
    started = False
    advance = clock.advance_to
    publish = bus.publish
    times = recording.times
    closes: list[Decimal] = []  # converted to floats once, after the loop
    exposed, equity = recording.exposed, recording.equity
    fills_seen = -1
    cash = float(portfolio.cash)
    replay_started = time.perf_counter()
    try:
        for event in events:
            if not started:
                advance(event.ts)
                store.start_run(run_id, "backtest", event.ts, settings.to_toml_dict())
                store.open_account(
                    store.account, "backtest", settings.engine.initial_cash, event.ts
                )
                engine.start_timers()
                started = True
            else:
                advance(event.ts)
            publish(event)
            if type(event) is Bar:
                bar = event
                times.append(event.ts)
                closes.append(event.close)
                if portfolio.n_fills != fills_seen:
                    fills_seen = portfolio.n_fills
                    cash = float(portfolio.cash)
                position = portfolio.positions.get(symbol)
                if position is not None and position.qty:
                    exposed.append(True)
                    equity.append(float(portfolio.equity))
                else:
                    exposed.append(False)
                    equity.append(cash)
            else:
                recording.n_news += 1
            pending += 1
            if pending >= 4096:
                meter.update(pending)
                pending = 0
    finally:
        meter.close()
    recording.n_bars = len(times)
    recording.closes = np.asarray(closes, dtype=float).tolist()  # Decimals -> floats, in C
    replay_s = time.perf_counter() - replay_started
    if bar is None:
        raise InputError(f"{bars_path}: no bars between --from and --to")
    engine.snapshot(clock.now())
    store.end_run(clock.now())
    from bot.report import build_metrics

    metrics = build_metrics(recording, engine, settings)
    result = BacktestResult(run_id, symbol, out_dir, settings, recording, metrics, parts)
    result.elapsed_s = time.perf_counter() - began
    result.replay_s = replay_s
    asyncio.run(model.close())
    store.close()
    parts.signals.cache.close()
    return result


async def _prefetch(parts: Parts, texts: list[str], progress: bool | None) -> None:
    if not texts:
        return
    meter = Progress(len(texts), "model", progress)
    try:
        await parts.signals.prefetch(texts, meter.update)
    finally:
        meter.close()


def _trade_recorder(recording: Recording, engine: object) -> Callable[[Fill, FillEffect], None]:
    from bot.engine import Engine

    assert isinstance(engine, Engine)

    def record(fill: Fill, effect: FillEffect) -> None:
        order = engine.orders.get(fill.client_order_id)
        before = effect.position_qty - (fill.qty if fill.side.sign > 0 else -fill.qty)
        recording.trades.append(
            TradeRow(
                ts=fill.ts,
                symbol=fill.symbol,
                side=fill.side.value,
                qty=fill.qty,
                price=fill.price,
                fee=fill.fee,
                liquidity=fill.liquidity.value,
                realised_pnl=effect.realised_pnl,
                position=effect.position_qty,
                avg_entry=effect.avg_price,
                reason=order.reason if order is not None else "",
            )
        )
        recording.round_trips.on_fill(
            fill.symbol,
            float(effect.position_qty),
            float(effect.realised_pnl),
            float(fill.fee),
            float(before),
        )

    return record
