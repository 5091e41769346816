"""What the main loop hands the console: a snapshot per tick, the heartbeat, and event counts.

The engine's objects belong to the main loop; reading them from the console's thread could see
a dict mid-update. So the main loop itself builds a plain, JSON-ready snapshot once a tick
(`take_snapshot`) and swaps it into `ConsoleState` under a lock, and `Observer`, a bus
subscriber, counts what passes by. A tick is also the heartbeat: a stuck loop stops ticking, so
`/health` turns 503 and the systemd watchdog stops being fed.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.assemble import Parts
from bot.console.metrics import ConsoleMetrics
from bot.events import Decision, Fill, NewsItem, OrderUpdate, Signal, iso
from bot.protocols import LinkState

_CENT = Decimal("0.01")
EQUITY_SAMPLES = 20_000  # ticks of equity kept in memory for the chart (about 5.5 h at 1 s)
LOG_LINES = 200  # the newest warnings and errors the console keeps
_LOG_FIELDS = 8  # fields of an event beside its name, level and time, each cut to 300 characters


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENT))


@dataclass
class FeedStats:
    items: int = 0
    last_item: str | None = None
    last_title: str = ""
    errors: int = 0
    last_error: str = ""
    last_error_at: str | None = None


@dataclass
class Observer:
    """Counts what passes on the bus (main loop only) into metrics and per-feed figures, and
    tells `on_fill` about each fill (Telegram's notification)."""

    metrics: ConsoleMetrics
    feeds: dict[str, FeedStats] = field(default_factory=dict)
    decisions: int = 0
    fills: int = 0
    listeners: list[Callable[[Fill], None]] = field(default_factory=list)

    def attach(self, bus: Any) -> None:
        bus.subscribe(NewsItem, self.on_news)
        bus.subscribe(Signal, self.on_signal)
        bus.subscribe(Decision, self.on_decision)
        bus.subscribe(OrderUpdate, self.on_order_update)
        bus.subscribe(Fill, self.on_fill)

    def on_news(self, item: NewsItem) -> None:
        stats = self.feeds.setdefault(item.source, FeedStats())
        stats.items += 1
        stats.last_item = iso(item.received)
        stats.last_title = item.title[:200]
        self.metrics.news_items.labels(item.source).inc()

    def on_signal(self, signal: Signal) -> None:
        self.metrics.signals.labels(signal.source, signal.label.word).inc()
        self.metrics.classify_latency.observe(
            max(0.0, (signal.ts - signal.received).total_seconds())
        )

    def on_decision(self, decision: Decision) -> None:
        self.decisions += 1
        self.metrics.decisions.labels(decision.outcome.value).inc()

    def on_order_update(self, update: OrderUpdate) -> None:
        self.metrics.order_updates.labels(update.status.value).inc()

    def on_fill(self, fill: Fill) -> None:
        self.fills += 1
        self.metrics.fills.labels(fill.symbol).inc()
        for listener in self.listeners:
            listener(fill)

    def on_source_error(self, source: str, error: str, now: datetime) -> None:
        stats = self.feeds.setdefault(source, FeedStats())
        stats.errors += 1
        stats.last_error = error[:300]
        stats.last_error_at = iso(now)
        self.metrics.source_errors.labels(source).inc()


class ConsoleState:
    """The latest snapshot and heartbeat, shared between the main loop (writer) and the
    console's thread (reader) under one lock."""

    def __init__(self, stale_after: float) -> None:
        self.stale_after = stale_after
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] = {}
        self._version = 0
        self._beat: datetime | None = None
        self._equity: deque[tuple[str, str]] = deque(maxlen=EQUITY_SAMPLES)
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_LINES)
        self.log_count = 0

    def note_log(self, event: dict[str, Any]) -> None:
        """A warning or error log event (already redacted by `bot.log`), from any thread."""
        line = {
            "time": str(event.get("timestamp", "")),
            "level": str(event.get("level", "")),
            "event": str(event.get("event", ""))[:300],
        }
        rest = [(k, v) for k, v in event.items() if k not in ("timestamp", "level", "event")]
        line["fields"] = {k: str(v)[:300] for k, v in rest[:_LOG_FIELDS]}  # type: ignore[assignment]
        with self._lock:
            self._log.append(line)
            self.log_count += 1

    def log_lines(self) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._log))

    def publish(self, snapshot: dict[str, Any], now: datetime) -> None:
        with self._lock:
            self._snapshot = snapshot
            self._version += 1
            self._beat = now
            self._equity.append((snapshot["time"], snapshot["equity"]))

    def beat(self, now: datetime) -> None:
        with self._lock:
            self._beat = now

    def current(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            return self._version, self._snapshot

    def equity_samples(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._equity)

    def heartbeat_age(self, now: datetime) -> float | None:
        with self._lock:
            beat = self._beat
        return None if beat is None else max(0.0, (now - beat).total_seconds())

    def healthy(self, now: datetime) -> bool:
        age = self.heartbeat_age(now)
        return age is not None and age <= self.stale_after


@dataclass(frozen=True)
class RunInfo:
    """What does not change during a run."""

    mode: str
    account: str
    run_id: str
    started: datetime
    model_id: str
    symbols: tuple[str, ...]


def _links(parts: Parts) -> list[LinkState]:
    """The market streams' and the live broker's connections (websockets, REST, files)."""
    links = [link for stream in parts.market_streams for link in stream.links()]
    if parts.live is not None:
        links.extend(parts.live.links())
    return links


def take_snapshot(parts: Parts, info: RunInfo, observer: Observer, now: datetime) -> dict[str, Any]:
    """The state the console shows, as plain values (main loop only); the gauges too."""
    engine = parts.engine
    portfolio = engine.portfolio
    metrics = observer.metrics
    positions = []
    for symbol, position in portfolio.positions.items():
        notional = position.notional
        metrics.position_notional.labels(symbol).set(float(notional))
        if not position.qty:
            continue
        price = engine.prices.get(symbol)
        positions.append(
            {
                "symbol": symbol,
                "qty": str(position.qty),
                "avg_price": str(position.avg_price),
                "mark": None if position.mark is None else str(position.mark),
                "notional": _money(notional),
                "unrealised_pnl": _money(position.unrealised_pnl),
                "realised_pnl": _money(position.realised_pnl),
                "price_at": None if price is None else iso(price.ts),
            }
        )
    open_orders = [o for book in engine.open_orders.values() for o in book.values()]
    by_status: dict[str, int] = {}
    for order in open_orders:
        by_status[order.status.value] = by_status.get(order.status.value, 0) + 1
    for status, count in by_status.items():
        metrics.open_orders.labels(status).set(count)
    equity = portfolio.equity
    kill = engine.risk.kill_switch
    metrics.equity.set(float(equity))
    metrics.cash.set(float(portfolio.cash))
    metrics.kill_switch.set(1 if kill else 0)
    metrics.heartbeat.set(now.timestamp())
    return {
        "time": iso(now),
        "mode": info.mode,
        "account": info.account,
        "run_id": info.run_id,
        "started": iso(info.started),
        "uptime_s": round((now - info.started).total_seconds(), 1),
        "model": {"id": info.model_id, "calls": parts.signals.model_calls},
        "symbols": list(info.symbols),
        "equity": _money(equity),
        "cash": _money(portfolio.cash),
        "initial_cash": _money(portfolio.initial_cash),
        "realised_pnl": _money(portfolio.realised_pnl),
        "unrealised_pnl": _money(portfolio.unrealised_pnl),
        "fees": _money(portfolio.fees),
        "positions": positions,
        "open_orders": [
            {
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": o.side.value,
                "qty": str(o.qty),
                "filled": str(o.filled_qty),
                "status": o.status.value,
            }
            for o in open_orders
        ],
        "kill_switch": kill,
        "risk": {"halted": engine.risk.halted, "reason": engine.risk.halt_reason()},
        "prices": {s: {"price": str(p.price), "at": iso(p.ts)} for s, p in engine.prices.items()},
        "feeds": {name: vars(stats).copy() for name, stats in observer.feeds.items()},
        "queues": parts.bus.stats(),
        "decisions": observer.decisions,
        "fills": observer.fills,
        "venue": "bybit" if parts.live is not None else "paper",
        "links": [
            {
                "name": link.name,
                "target": link.target,
                "up": link.up,
                "connects": link.connects,
                "reconnects": link.reconnects,
                "messages": link.messages,
                "errors": link.errors,
                "last_error": link.last_error,
            }
            for link in _links(parts)
        ],
    }
