"""The symbol table: which exchange symbols exist, what news calls them, and their trading rules.

News sources tag each `NewsItem` with the symbols its text names (through the aliases configured
in `[symbols]`), and the signal service turns untagged items into market-wide signals. Keeping the
table in one place means a headline about "Bitcoin" reaches BTCUSDT the same way in replay, in
the paper daemon and in `lorabot news`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

from bot.config import Settings, SymbolConfig

QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH", "EUR")


def base_asset(symbol: str) -> str:
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)]
    return symbol


@dataclass(frozen=True, slots=True)
class Instrument:
    """The exchange's filters for one symbol; every order price and quantity goes through it."""

    symbol: str
    category: str
    tick_size: Decimal
    qty_step: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal | None = None

    @property
    def can_short(self) -> bool:
        return self.category != "spot"

    def round_price(self, price: Decimal, side_sign: int = 0) -> Decimal:
        """To the tick: a buy rounds down and a sell up (never a worse limit), else nearest."""
        rounding = ROUND_HALF_UP if side_sign == 0 else (ROUND_DOWN if side_sign > 0 else ROUND_UP)
        ticks = (price / self.tick_size).to_integral_value(rounding=rounding)
        return (ticks * self.tick_size).quantize(self.tick_size)

    def round_qty(self, qty: Decimal) -> Decimal:
        """Down to the lot step, so rounding never makes an order larger than decided."""
        steps = (abs(qty) / self.qty_step).to_integral_value(rounding=ROUND_DOWN)
        rounded = (steps * self.qty_step).quantize(self.qty_step)
        return rounded if qty >= 0 else -rounded

    def check(self, qty: Decimal, price: Decimal) -> str | None:
        """Why an order of `qty` at `price` would be refused by the venue, or None if it is fine."""
        size = abs(qty)
        if size < self.min_qty:
            return f"quantity {size} is below the minimum {self.min_qty} for {self.symbol}"
        if self.max_qty is not None and size > self.max_qty:
            return f"quantity {size} is above the maximum {self.max_qty} for {self.symbol}"
        if size % self.qty_step != 0:
            return f"quantity {size} is not a multiple of the lot step {self.qty_step}"
        if size * price < self.min_notional:
            return (
                f"notional {size * price:.2f} is below the minimum {self.min_notional} "
                f"for {self.symbol}"
            )
        return None

    @classmethod
    def from_config(cls, symbol: str, config: SymbolConfig) -> Instrument:
        return cls(
            symbol=symbol,
            category=config.category,
            tick_size=config.tick_size,
            qty_step=config.qty_step,
            min_qty=config.min_qty,
            min_notional=config.min_notional,
        )


class SymbolTable:
    """Aliases → symbols for tagging, and the instrument rules for trading."""

    def __init__(
        self,
        aliases: Mapping[str, Iterable[str]],
        instruments: Mapping[str, Instrument] | None = None,
        traded: Iterable[str] | None = None,
    ) -> None:
        self._by_alias: dict[str, str] = {}
        for symbol, names in aliases.items():
            for name in (symbol, base_asset(symbol), *names):
                self._by_alias.setdefault(name.lower(), symbol)
        self.symbols: tuple[str, ...] = tuple(aliases)
        self.instruments: dict[str, Instrument] = dict(instruments or {})
        self.traded: tuple[str, ...] = tuple(traded if traded is not None else self.symbols)
        ordered = sorted(self._by_alias, key=len, reverse=True)
        pattern = "|".join(re.escape(alias) for alias in ordered)
        # Word boundaries that also accept a leading `$` (cashtags) and `#`.
        self._regex = re.compile(rf"(?<![\w])[$#]?({pattern})(?![\w])", re.IGNORECASE)

    @classmethod
    def from_settings(cls, settings: Settings) -> SymbolTable:
        """Enabled symbols only: `enabled = false` drops one, `trade = false` just never trades."""
        symbols = settings.enabled_symbols
        return cls(
            {name: cfg.aliases for name, cfg in symbols.items()},
            {name: Instrument.from_config(name, cfg) for name, cfg in symbols.items()},
            [name for name, cfg in symbols.items() if cfg.trade],
        )

    def tag(self, *texts: str) -> tuple[str, ...]:
        """The symbols the texts name, in table order, each once."""
        found: set[str] = set()
        for text in texts:
            if not text:
                continue
            for match in self._regex.finditer(text):
                found.add(self._by_alias[match.group(1).lower()])
        return tuple(s for s in self.symbols if s in found)

    def resolve(self, name: str) -> str | None:
        """A symbol from a symbol or an alias (case-insensitive)."""
        return self._by_alias.get(name.strip().lower().lstrip("$#"))

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self.instruments[symbol]
        except KeyError:
            raise KeyError(f"no instrument rules for {symbol}: add it under [symbols]") from None

    def with_instruments(self, instruments: Mapping[str, Instrument]) -> SymbolTable:
        """A copy whose rules come from the venue (live modes) instead of config."""
        table = SymbolTable.__new__(SymbolTable)
        table.__dict__.update(self.__dict__)
        table.instruments = {**self.instruments, **instruments}
        return table
