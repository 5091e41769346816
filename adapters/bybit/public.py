"""Bybit's public websocket as a lorabot `MarketStream`: bars, trades and tickers.

- A `Bar` is published only when Bybit confirms the kline (`confirm: true`); in-progress kline
  updates become `Ticker(last=close)` when the tickers topic is off.
- Bars are published once and in order: a confirmed kline at or before the last published one is
  a duplicate (dropped, counted). A confirmed kline further ahead than the next expected open,
  or the first kline after a reconnect, means bars were missed: they are fetched from
  /v5/market/kline and published first, in order. If REST cannot supply them (it failed, or
  `gap_fill = false`) the gap is flagged: logged as a warning with its range and counted in
  `stats.gaps_flagged`, never silently skipped.
- Trades are de-duplicated by trade id. After a reconnect, the trades since the last one seen are
  fetched from /v5/market/recent-trade; when that window (1000 trades on derivatives, 60 on spot)
  does not reach back far enough the rest of the gap is flagged the same way.
- `await publish(event)` applies back-pressure: while the bus is full the stream stops reading,
  and the keepalive keeps pinging so the connection survives the pause.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.bybit import intervals
from adapters.bybit.endpoints import endpoints
from adapters.bybit.errors import BybitError
from adapters.bybit.fields import ParseError
from adapters.bybit.parse import TickerBook, kline_from_ws, trades_from_ws
from adapters.bybit.rest import BybitRest
from adapters.bybit.ws import WsConnection
from bot.clock import Clock
from bot.config import Settings
from bot.events import Ticker
from bot.log import get_logger
from bot.protocols import LinkState, Publish

log = get_logger(__name__)

SEEN_TRADES = 20_000


@dataclass
class StreamStats:
    bars: int = 0
    trades: int = 0
    tickers: int = 0
    bars_filled: int = 0
    trades_filled: int = 0
    gaps_flagged: int = 0
    duplicates: int = 0
    unreadable: int = 0


class _SeenIds:
    """The most recent trade ids, bounded."""

    def __init__(self, size: int) -> None:
        self._order: deque[str] = deque()
        self._set: set[str] = set()
        self._size = size

    def add(self, key: str) -> bool:
        """True if new."""
        if key in self._set:
            return False
        self._set.add(key)
        self._order.append(key)
        if len(self._order) > self._size:
            self._set.discard(self._order.popleft())
        return True


class BybitPublicStream:
    """Klines, public trades and tickers for `symbols` in the configured category."""

    def __init__(self, settings: Settings, symbols: Sequence[str], clock: Clock) -> None:
        if not symbols:
            raise ValueError("the public stream needs at least one symbol")
        self.settings = settings
        config = settings.bybit
        self.config = config
        self.category = config.category
        self.interval = config.kline_interval
        self.symbols = tuple(symbols)
        self.endpoints = endpoints(settings)
        self._clock = clock
        self.stats = StreamStats()
        self._routes: dict[str, tuple[str, str]] = {}
        topics: list[str] = []
        for symbol in self.symbols:
            topic = f"kline.{self.interval}.{symbol}"
            self._routes[topic] = ("kline", symbol)
            topics.append(topic)
            if config.trades:
                topic = f"publicTrade.{symbol}"
                self._routes[topic] = ("trade", symbol)
                topics.append(topic)
            if config.tickers:
                topic = f"tickers.{symbol}"
                self._routes[topic] = ("ticker", symbol)
                topics.append(topic)
        self.topics = tuple(topics)
        self._last_bar_open: dict[str, int] = {}
        self._last_trade_ms: dict[str, int] = {}
        self._seen = {symbol: _SeenIds(SEEN_TRADES) for symbol in self.symbols}
        self._check_bars: set[str] = set()
        self._check_trades: set[str] = set()
        self._tickers = TickerBook()
        self._publish: Publish | None = None
        self._rest: BybitRest | None = None
        self.connection = WsConnection(
            f"public-{self.category}",
            self.endpoints.ws_public,
            self.topics,
            on_message=self._on_message,
            on_connected=self._on_connected,
            ping_interval=config.ping_interval,
            silence_timeout=config.silence_timeout,
            connect_timeout=config.connect_timeout,
            reconnect_initial=config.reconnect_initial,
            reconnect_max=config.reconnect_max,
        )

    async def run(self, publish: Publish) -> None:
        """Stream until cancelled; raises only for configuration errors (refused topics)."""
        self._publish = publish
        self._rest = BybitRest(self.config, self.endpoints.rest, self._clock)
        try:
            await self.connection.run()
        finally:
            await self._rest.close()

    def links(self) -> tuple[LinkState, ...]:
        return (self.connection.link("bybit public websocket"),)

    async def _on_connected(self, reconnected: bool) -> None:
        if reconnected:
            self._check_bars = set(self.symbols)
            self._check_trades = set(self.symbols)
            self._tickers = TickerBook()  # Bybit sends a fresh snapshot after subscribing

    async def _on_message(self, data: dict[str, Any]) -> None:
        route = self._routes.get(data["topic"])
        if route is None:
            return
        kind, symbol = route
        try:
            if kind == "kline":
                await self._on_kline(symbol, data)
            elif kind == "trade":
                await self._on_trades(symbol, data)
            else:
                ticker = self._tickers.apply(data)
                self.stats.tickers += 1
                await self._emit(ticker)
        except ParseError as error:
            self.stats.unreadable += 1
            log.warning(
                "bybit: unreadable market message skipped",
                topic=data.get("topic"),
                error=str(error),
            )

    async def _emit(self, event: object) -> None:
        assert self._publish is not None
        await self._publish(event)

    # -- klines --------------------------------------------------------------------------------

    async def _on_kline(self, symbol: str, data: dict[str, Any]) -> None:
        items = data.get("data")
        if not isinstance(items, list):
            raise ParseError("kline: 'data' is not a list")
        for item in items:
            confirmed, bar = kline_from_ws(symbol, item)
            open_ms = int(item["start"])
            if symbol in self._check_bars:
                self._check_bars.discard(symbol)
                await self._fill_bars(symbol, open_ms)
            if confirmed:
                last = self._last_bar_open.get(symbol)
                if last is not None and open_ms <= last:
                    self.stats.duplicates += 1
                    continue
                if last is not None and intervals.next_open_ms(self.interval, last) < open_ms:
                    await self._fill_bars(symbol, open_ms)
                self._last_bar_open[symbol] = open_ms
                self.stats.bars += 1
                await self._emit(bar)
            elif not self.config.tickers:
                stamp = item.get("timestamp") or data.get("ts")
                ts = datetime.fromtimestamp(int(stamp) / 1000, UTC) if stamp else bar.ts_open
                self.stats.tickers += 1
                await self._emit(Ticker(symbol=symbol, ts=ts, last=bar.close))

    async def _fill_bars(self, symbol: str, upto_open_ms: int) -> None:
        """Publish the closed bars opening after the last published one and before `upto`."""
        last = self._last_bar_open.get(symbol)
        if last is None:
            return
        start = intervals.next_open_ms(self.interval, last)
        if start >= upto_open_ms:
            return
        bars = []
        if self.config.gap_fill and self._rest is not None:
            try:
                bars = await self._rest.klines(
                    self.category, symbol, self.interval, start, upto_open_ms - 1
                )
            except BybitError as error:
                log.warning(
                    "bybit: kline gap could not be fetched", symbol=symbol, error=str(error)
                )
        for bar in bars:
            open_ms = int(bar.ts_open.timestamp() * 1000)
            if open_ms <= self._last_bar_open[symbol] or open_ms >= upto_open_ms:
                continue
            gap_start = intervals.next_open_ms(self.interval, self._last_bar_open[symbol])
            if open_ms > gap_start:
                self._flag("kline", symbol, gap_start, open_ms)
            self._last_bar_open[symbol] = open_ms
            self.stats.bars_filled += 1
            self.stats.bars += 1
            await self._emit(bar)
        tail_start = intervals.next_open_ms(self.interval, self._last_bar_open[symbol])
        if tail_start < upto_open_ms:
            self._flag("kline", symbol, tail_start, upto_open_ms)
        elif bars:
            log.info("bybit: kline gap filled from REST", symbol=symbol, bars=len(bars))

    # -- trades --------------------------------------------------------------------------------

    async def _on_trades(self, symbol: str, data: dict[str, Any]) -> None:
        items = data.get("data")
        if not isinstance(items, list):
            raise ParseError("publicTrade: 'data' is not a list")
        if symbol in self._check_trades:
            self._check_trades.discard(symbol)
            await self._fill_trades(symbol)
        seen = self._seen[symbol]
        for trade in trades_from_ws(items):
            if not seen.add(trade.trade_id):
                self.stats.duplicates += 1
                continue
            self._note_trade(symbol, trade.ts)
            self.stats.trades += 1
            await self._emit(trade)

    def _note_trade(self, symbol: str, ts: datetime) -> None:
        ms = int(ts.timestamp() * 1000)
        if ms > self._last_trade_ms.get(symbol, 0):
            self._last_trade_ms[symbol] = ms

    async def _fill_trades(self, symbol: str) -> None:
        last = self._last_trade_ms.get(symbol)
        if last is None:
            return
        limit = 60 if self.category == "spot" else 1000
        trades = []
        if self.config.gap_fill and self._rest is not None:
            try:
                trades = await self._rest.recent_trades(self.category, symbol, limit)
            except BybitError as error:
                log.warning(
                    "bybit: trade gap could not be fetched", symbol=symbol, error=str(error)
                )
                self._flag("trade", symbol, last, None)
                return
        else:
            self._flag("trade", symbol, last, None)
            return
        if len(trades) >= limit and int(trades[0].ts.timestamp() * 1000) > last:
            self._flag("trade", symbol, last, int(trades[0].ts.timestamp() * 1000))
        seen = self._seen[symbol]
        filled = 0
        for trade in trades:
            if int(trade.ts.timestamp() * 1000) < last or not seen.add(trade.trade_id):
                continue
            self._note_trade(symbol, trade.ts)
            filled += 1
            self.stats.trades += 1
            await self._emit(trade)
        self.stats.trades_filled += filled
        if filled:
            log.info("bybit: trade gap filled from REST", symbol=symbol, trades=filled)

    def _flag(self, kind: str, symbol: str, from_ms: int, to_ms: int | None) -> None:
        self.stats.gaps_flagged += 1
        start = datetime.fromtimestamp(from_ms / 1000, UTC).isoformat()
        end = datetime.fromtimestamp(to_ms / 1000, UTC).isoformat() if to_ms else "now"
        log.warning(f"bybit: {kind} gap not filled", symbol=symbol, gap_from=start, gap_to=end)
