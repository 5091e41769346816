"""The simulator's market: a seeded price path defined at every instant, past and future.

The path is a sum of value-noise octaves (time scales from seconds to a month, amplitudes growing
with the square root of the scale, like a random walk's), so it looks like a market at every zoom
and can be evaluated at any time without simulating up to it. That gives three properties the
tests rely on: history for any date range (the downloader), a confirmed websocket kline equal to
the REST kline for the same bar (gap filling can be checked exactly), and the same market for
the same seed. `shift` moves the price from a moment on (the admin API uses it to make resting
orders fill on demand); history before that moment is unchanged.

Market time may run faster than the wall clock (`speed`), so a 1-minute bar can close every
second in a test. Order and execution timestamps stay on the wall clock.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from adapters.bybit import intervals

_MASK = (1 << 64) - 1
_SCALES_S = (5, 30, 120, 600, 3600, 14_400, 86_400, 604_800, 2_592_000)
_SAMPLES_PER_BAR = 12
_YEAR_S = 31_536_000


def _mix(value: int) -> int:
    """splitmix64: a good 64-bit hash, cheap in Python."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _unit(value: int) -> float:
    """A hash to [-1, 1)."""
    return (_mix(value) >> 11) * (2.0 / (1 << 53)) - 1.0


@dataclass(frozen=True)
class SimInstrument:
    """One symbol's filters (Bybit's real ones for the defaults) and its starting price."""

    symbol: str
    category: str
    base_price: Decimal
    tick_size: Decimal
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    max_market_qty: Decimal
    min_notional: Decimal
    volatility: float = 0.6  # annualised

    @property
    def base_coin(self) -> str:
        return self.symbol[: -len(self.quote_coin)]

    @property
    def quote_coin(self) -> str:
        return "USDT" if self.symbol.endswith("USDT") else self.symbol[-3:]

    def round_price(self, price: float | Decimal, down: bool = False) -> Decimal:
        value = Decimal(repr(price)) if isinstance(price, float) else price
        ticks = (value / self.tick_size).to_integral_value(
            rounding=ROUND_DOWN if down else ROUND_HALF_UP
        )
        return (ticks * self.tick_size).quantize(self.tick_size)

    def info(self) -> dict[str, object]:
        """The instruments-info entry Bybit returns for this symbol."""
        if self.category == "spot":
            return {
                "symbol": self.symbol,
                "baseCoin": self.base_coin,
                "quoteCoin": self.quote_coin,
                "innovation": "0",
                "status": "Trading",
                "marginTrading": "utaOnly",
                "stTag": "0",
                "lotSizeFilter": {
                    "basePrecision": str(self.qty_step),
                    "quotePrecision": "0.00000001",
                    "minOrderQty": str(self.min_qty),
                    "maxOrderQty": str(self.max_qty),
                    "minOrderAmt": str(self.min_notional),
                    "maxOrderAmt": "8000000",
                },
                "priceFilter": {"tickSize": str(self.tick_size)},
                "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
            }
        return {
            "symbol": self.symbol,
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": self.base_coin,
            "quoteCoin": self.quote_coin,
            "launchTime": "1584230400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": str(max(0, -self.tick_size.as_tuple().exponent)),  # type: ignore[operator]
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {
                "minPrice": str(self.tick_size),
                "maxPrice": "1999999.80",
                "tickSize": str(self.tick_size),
            },
            "lotSizeFilter": {
                "maxOrderQty": str(self.max_qty),
                "minOrderQty": str(self.min_qty),
                "qtyStep": str(self.qty_step),
                "postOnlyMaxOrderQty": str(self.max_qty),
                "maxMktOrderQty": str(self.max_market_qty),
                "minNotionalValue": str(self.min_notional),
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "settleCoin": self.quote_coin,
            "copyTrading": "both",
            "upperFundingRate": "0.005",
            "lowerFundingRate": "-0.005",
            "isPreListing": False,
            "preListingInfo": None,
        }


def default_instruments() -> list[SimInstrument]:
    """BTCUSDT and ETHUSDT, linear and spot, with Bybit's real filters."""
    d = Decimal
    return [
        SimInstrument(
            "BTCUSDT",
            "linear",
            d("65000"),
            d("0.1"),
            d("0.001"),
            d("0.001"),
            d("1190"),
            d("119"),
            d("5"),
        ),
        SimInstrument(
            "ETHUSDT",
            "linear",
            d("3200"),
            d("0.01"),
            d("0.01"),
            d("0.01"),
            d("8000"),
            d("800"),
            d("5"),
        ),
        SimInstrument(
            "BTCUSDT",
            "spot",
            d("65000"),
            d("0.01"),
            d("0.000001"),
            d("0.000048"),
            d("71.73956243"),
            d("71.73956243"),
            d("5"),
        ),
        SimInstrument(
            "ETHUSDT",
            "spot",
            d("3200"),
            d("0.01"),
            d("0.00001"),
            d("0.00062"),
            d("1229.2336343"),
            d("1229.2336343"),
            d("5"),
        ),
    ]


@dataclass
class PublicTrade:
    ts_ms: int
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    trade_id: str
    tick_direction: str

    def ws(self) -> dict[str, object]:
        return {
            "T": self.ts_ms,
            "s": self.symbol,
            "S": self.side,
            "v": str(self.qty),
            "p": str(self.price),
            "L": self.tick_direction,
            "i": self.trade_id,
            "BT": False,
        }

    def rest(self, category: str) -> dict[str, object]:
        return {
            "execId": self.trade_id,
            "symbol": self.symbol,
            "price": str(self.price),
            "size": str(self.qty),
            "side": self.side,
            "time": str(self.ts_ms),
            "isBlockTrade": False,
            **({"isRPITrade": False} if category == "spot" else {}),
        }


@dataclass
class Kline:
    start: int
    end: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    turnover: Decimal
    confirm: bool

    def ws(self, interval: str, timestamp: int) -> dict[str, object]:
        return {
            "start": self.start,
            "end": self.end,
            "interval": interval,
            "open": str(self.open),
            "close": str(self.close),
            "high": str(self.high),
            "low": str(self.low),
            "volume": str(self.volume),
            "turnover": str(self.turnover),
            "confirm": self.confirm,
            "timestamp": timestamp,
        }

    def rest(self) -> list[str]:
        return [
            str(self.start),
            str(self.open),
            str(self.high),
            str(self.low),
            str(self.close),
            str(self.volume),
            str(self.turnover),
        ]


class PricePath:
    """log(price / base) as a deterministic function of time, plus admin shifts."""

    def __init__(self, seed: int, instrument: SimInstrument) -> None:
        self.instrument = instrument
        self.base = float(instrument.base_price)
        # Linear and spot of one coin share a path, as on the real exchange.
        self._key = _mix(seed ^ _mix(int.from_bytes(instrument.symbol.encode(), "little") & _MASK))
        per_second = instrument.volatility / math.sqrt(_YEAR_S)
        self._octaves = [
            (scale * 1000, per_second * math.sqrt(scale) * 1.2, _mix(self._key + i))
            for i, scale in enumerate(_SCALES_S)
        ]
        self.shifts: list[tuple[int, float]] = []

    def log_move(self, t_ms: int) -> float:
        total = 0.0
        for scale_ms, amplitude, key in self._octaves:
            knot, rest = divmod(t_ms, scale_ms)
            frac = rest / scale_ms
            a = _unit(key ^ (knot * 0x9E3779B1))
            b = _unit(key ^ ((knot + 1) * 0x9E3779B1))
            total += amplitude * (a + (b - a) * frac)
        for when, delta in self.shifts:
            if t_ms >= when:
                total += delta
        return total

    def price(self, t_ms: int) -> float:
        return self.base * math.exp(self.log_move(t_ms))

    def shift_to(self, t_ms: int, target: float) -> None:
        """From `t_ms` on, the price is `target` at `t_ms` (earlier history is untouched)."""
        delta = math.log(target / self.price(t_ms))
        self.shifts.append((t_ms, delta))

    def kline(self, interval: str, start_ms: int, now_ms: int) -> Kline:
        """The bar opening at `start_ms`, as far as it has formed by `now_ms`."""
        end_open = intervals.next_open_ms(interval, start_ms)
        length = end_open - start_ms
        instrument = self.instrument
        upto = min(now_ms, end_open)
        samples = [
            self.price(start_ms + length * j // _SAMPLES_PER_BAR)
            for j in range(_SAMPLES_PER_BAR + 1)
            if start_ms + length * j // _SAMPLES_PER_BAR <= upto
        ]
        close = self.price(upto)
        samples.append(close)
        open_ = instrument.round_price(samples[0])
        high = instrument.round_price(max(samples))
        low = instrument.round_price(min(samples))
        close_d = instrument.round_price(close)
        formed = (upto - start_ms) / length
        unit = _mix(self._key ^ _mix(start_ms ^ length))
        minutes = length / 60_000
        base_volume = 200_000.0 / self.base  # ~200k quote per minute of activity
        volume = base_volume * minutes * (0.5 + (unit >> 11) / (1 << 53)) * formed
        volume_d = (Decimal(repr(volume)) / instrument.qty_step).to_integral_value(
            rounding=ROUND_DOWN
        ) * instrument.qty_step
        mid = (float(open_) + float(close_d)) / 2
        turnover = Decimal(repr(round(float(volume_d) * mid, 4)))
        return Kline(
            start_ms,
            end_open - 1,
            open_,
            high,
            low,
            close_d,
            volume_d,
            turnover,
            now_ms >= end_open,
        )


@dataclass
class SymbolMarket:
    """The live state of one symbol: last trade, recent trades, best bid and ask."""

    instrument: SimInstrument
    path: PricePath
    trades: deque[PublicTrade] = field(default_factory=lambda: deque(maxlen=1000))
    last_price: Decimal | None = None

    def quotes(self, now_ms: int) -> tuple[Decimal, Decimal]:
        """(best bid, best ask): one tick apart around the path."""
        tick = self.instrument.tick_size
        mid = self.path.price(now_ms)
        bid = self.instrument.round_price(mid - float(tick) / 2, down=True)
        return bid, bid + tick


class Market:
    """Every simulated symbol, a seeded trade generator, and market time."""

    def __init__(self, instruments: list[SimInstrument], seed: int = 1, speed: float = 1.0) -> None:
        self.seed = seed
        self.speed = speed
        self.rng = random.Random(seed)
        self._anchor_real_ms = int(time.time() * 1000)
        paths: dict[str, PricePath] = {}
        self.symbols: dict[tuple[str, str], SymbolMarket] = {}
        for instrument in instruments:
            path = paths.setdefault(instrument.symbol, PricePath(seed, instrument))
            if path.instrument is not instrument:
                path = PricePath(seed, instrument)
                path.shifts = paths[instrument.symbol].shifts  # one coin, one price
            self.symbols[(instrument.category, instrument.symbol)] = SymbolMarket(instrument, path)

    def now_ms(self) -> int:
        real = int(time.time() * 1000)
        return self._anchor_real_ms + int((real - self._anchor_real_ms) * self.speed)

    def get(self, category: str, symbol: str) -> SymbolMarket | None:
        return self.symbols.get((category, symbol))

    def set_price(self, symbol: str, price: float) -> None:
        now = self.now_ms()
        done: set[int] = set()
        for (_, name), market in self.symbols.items():
            if name == symbol and id(market.path.shifts) not in done:
                done.add(id(market.path.shifts))
                market.path.shift_to(now, price)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def generate_trades(self, market: SymbolMarket, now_ms: int) -> list[PublicTrade]:
        """One to three prints near the path, so every trade topic moves at every tick."""
        instrument = market.instrument
        bid, ask = market.quotes(now_ms)
        made = []
        for _ in range(self.rng.randint(1, 3)):
            side = "Buy" if self.rng.random() < 0.5 else "Sell"
            price = ask if side == "Buy" else bid
            lots = self.rng.choice((1, 1, 2, 3, 5, 10, 20, 50))
            qty = (instrument.min_qty * lots).quantize(instrument.qty_step)
            previous = market.last_price
            direction = (
                "ZeroPlusTick"
                if previous is None or price == previous
                else "PlusTick"
                if price > previous
                else "MinusTick"
            )
            trade = PublicTrade(
                now_ms, instrument.symbol, side, qty, price, self.new_id(), direction
            )
            market.trades.append(trade)
            market.last_price = price
            made.append(trade)
        return made
