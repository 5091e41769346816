"""The paper broker: simulated execution for the paper daemon and for backtests.

Fill rules, chosen so that a backtest never trades on a price it could not have had:
- A market order fills at the open of the first bar that opens at or after the decision (or, live,
  at the first trade/ticker after it), made worse by `slippage_bps`, rounded away from the trader
  to the tick. It pays the taker fee.
- A limit order rests: it fills when a later bar trades through its price (low <= buy limit,
  high >= sell limit), at the limit or at the bar's open if the bar opened through it; it pays the
  maker fee. Live, a trade at or through the limit fills it.
- A stop (a protective exit: stop-loss, take-profit, trailing stop) is sent by the engine once a
  bar has reached its level, decided from the bar's high and low (`strategies/exits.py`); it fills
  at once at that level, or at the open where the bar gapped through it, made worse by the
  slippage like any taker order.
- Quantities were rounded to the lot step by the engine; orders under the instrument's minimum
  quantity or notional are rejected here as the venue would.

It is its own class, not a dry-run flag inside the live broker: the live broker never simulates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from bot.clock import Clock
from bot.config import PaperConfig
from bot.events import Bar, Fill, Liquidity, OrderType, OrderUpdate, Side, Ticker, Trade
from bot.orders import Order, OrderStatus
from bot.protocols import Emit, MarketEvent, VenueState
from bot.symbols import SymbolTable

FEE_QUANTUM = Decimal("0.00000001")
_BPS = Decimal("0.0001")


class _Resting:
    __slots__ = ("order", "since")

    def __init__(self, order: Order, since: datetime) -> None:
        self.order = order
        self.since = since


class PaperBroker:
    def __init__(self, config: PaperConfig, symbols: SymbolTable, clock: Clock) -> None:
        self.config = config
        self.symbols = symbols
        self.clock = clock
        self._emit: Emit | None = None
        self._resting: dict[str, list[_Resting]] = {}
        self._slippage = Decimal(repr(config.slippage_bps)) * _BPS
        self._last_price: dict[str, Decimal] = {}
        self._fees: dict[str, tuple[Decimal, Decimal]] = {}
        for symbol, instrument in symbols.instruments.items():
            if instrument.category == "spot":
                self._fees[symbol] = (config.spot_maker_fee, config.spot_taker_fee)
            else:
                self._fees[symbol] = (config.linear_maker_fee, config.linear_taker_fee)

    def bind(self, emit: Emit) -> None:
        self._emit = emit

    def _send(self, event: object) -> None:
        if self._emit is None:
            raise RuntimeError("PaperBroker.bind(emit) was not called")
        self._emit(event)

    # -- orders -----------------------------------------------------------------------------

    def submit(self, order: Order) -> None:
        now = self.clock.now()
        instrument = self.symbols.instruments.get(order.symbol)
        if instrument is None:
            self._reject(order, now, f"unknown symbol {order.symbol}")
            return
        reference = order.price if order.order_type is OrderType.LIMIT else None
        reference = reference or self._last_price.get(order.symbol)
        if reference is not None:
            problem = instrument.check(order.qty, reference)
            if problem:
                self._reject(order, now, problem)
                return
        if order.order_type is not OrderType.MARKET and order.price is None:
            self._reject(order, now, f"a {order.order_type.value} order needs a price")
            return
        self._send(
            OrderUpdate(
                now,
                order.client_order_id,
                OrderStatus.ACCEPTED,
                venue_order_id=f"paper-{order.client_order_id}",
            )
        )
        if order.order_type is OrderType.STOP:
            # The bar that reached the level has been seen: the stop fills at it, now.
            assert order.price is not None
            self._fill(order, now, order.price, Liquidity.TAKER)
            return
        self._resting.setdefault(order.symbol, []).append(_Resting(order, now))

    def _reject(self, order: Order, now: datetime, reason: str) -> None:
        self._send(OrderUpdate(now, order.client_order_id, OrderStatus.REJECTED, reason=reason))

    def cancel(self, order: Order) -> None:
        resting = self._resting.get(order.symbol, [])
        for index, entry in enumerate(resting):
            if entry.order.client_order_id == order.client_order_id:
                del resting[index]
                self._send(
                    OrderUpdate(
                        self.clock.now(),
                        order.client_order_id,
                        OrderStatus.CANCELLED,
                        reason="cancelled",
                    )
                )
                return

    def open_orders(self) -> list[Order]:
        return [entry.order for entries in self._resting.values() for entry in entries]

    # -- market data ------------------------------------------------------------------------

    def on_market(self, event: MarketEvent) -> None:
        if isinstance(event, Bar):
            self._last_price[event.symbol] = event.close
            if self._resting.get(event.symbol):
                self._on_bar(event)
        elif isinstance(event, Trade):
            self._last_price[event.symbol] = event.price
            if self._resting.get(event.symbol):
                self._on_price(event.symbol, event.ts, event.price)
        elif isinstance(event, Ticker):
            price = event.last or event.mark
            if price is not None:
                self._last_price[event.symbol] = price
                if self._resting.get(event.symbol):
                    self._on_price(event.symbol, event.ts, price)

    def _on_bar(self, bar: Bar) -> None:
        resting = self._resting[bar.symbol]
        keep: list[_Resting] = []
        for entry in resting:
            order = entry.order
            if entry.since > bar.ts_open:
                keep.append(entry)  # decided after this bar opened: wait for the next one
                continue
            if order.order_type is OrderType.MARKET:
                self._fill(order, bar.ts_open, bar.open, Liquidity.TAKER)
                continue
            assert order.price is not None
            if order.side is Side.BUY and bar.low <= order.price:
                self._fill(order, bar.ts_open, min(order.price, bar.open), Liquidity.MAKER)
            elif order.side is Side.SELL and bar.high >= order.price:
                self._fill(order, bar.ts_open, max(order.price, bar.open), Liquidity.MAKER)
            else:
                keep.append(entry)
        self._resting[bar.symbol] = keep

    def _on_price(self, symbol: str, ts: datetime, price: Decimal) -> None:
        resting = self._resting[symbol]
        keep: list[_Resting] = []
        for entry in resting:
            order = entry.order
            if entry.since > ts:
                keep.append(entry)
                continue
            if order.order_type is OrderType.MARKET:
                self._fill(order, ts, price, Liquidity.TAKER)
            elif order.price is not None and (
                (order.side is Side.BUY and price <= order.price)
                or (order.side is Side.SELL and price >= order.price)
            ):
                self._fill(order, ts, order.price, Liquidity.MAKER)
            else:
                keep.append(entry)
        self._resting[symbol] = keep

    def _fill(self, order: Order, ts: datetime, reference: Decimal, liquidity: Liquidity) -> None:
        instrument = self.symbols.instrument(order.symbol)
        sign = order.side.sign
        if liquidity is Liquidity.TAKER:
            price = instrument.round_price(reference * (1 + sign * self._slippage), -sign)
        else:
            price = reference
        maker, taker = self._fees[order.symbol]
        rate = taker if liquidity is Liquidity.TAKER else maker
        qty = order.remaining
        fee = (qty * price * rate).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)
        self._send(
            Fill(
                ts=ts,
                client_order_id=order.client_order_id,
                exec_id=f"{order.client_order_id}-1",
                symbol=order.symbol,
                side=order.side,
                qty=qty,
                price=price,
                fee=fee,
                liquidity=liquidity,
            )
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def reconcile(self, known: Sequence[Order]) -> VenueState | None:
        """The store is the paper venue's truth: resume its open orders as resting orders."""
        now = self.clock.now()
        for order in known:
            if order.is_open and all(
                e.order.client_order_id != order.client_order_id
                for e in self._resting.get(order.symbol, [])
            ):
                self._resting.setdefault(order.symbol, []).append(_Resting(order, now))
        return None
