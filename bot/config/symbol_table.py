"""The `[symbols]` table: each symbol's aliases and trading rules, merged key by key over defaults.

A `[symbols.BTCUSDT]` table in a file overrides only the keys it names, as every other table does:
writing `tick_size` alone must not drop ETHUSDT nor BTCUSDT's aliases. A symbol the defaults do
not know is added after them, in file order; a default symbol is dropped with `enabled = false`
(it stays in the table, so the config a run writes reads back the same, but nothing tags, streams
or trades it). `trade = false` is different: news is still tagged with the symbol.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from bot.config.values import MONEY_MAX, Dec, Section

_RULE_MIN = Decimal("1E-12")
_RULE_MAX = Decimal("1000000000")
Rule = Annotated[Dec, Field(ge=_RULE_MIN, le=_RULE_MAX)]
"""A tick size, lot step or minimum quantity: positive, 1e-12 to 1e9."""


class SymbolConfig(Section):
    enabled: bool = True
    aliases: tuple[str, ...] = ()
    category: Literal["linear", "spot"] = "linear"
    trade: bool = True
    tick_size: Rule = Decimal("0.01")
    qty_step: Rule = Decimal("0.001")
    min_qty: Rule = Decimal("0.001")
    min_notional: Annotated[Dec, Field(ge=0, le=MONEY_MAX)] = Decimal("5")
    leverage: Annotated[Dec, Field(ge=1, le=200)] = Decimal("1")
    margin_mode: Literal["cross", "isolated"] = "cross"
    maintenance_margin_rate: Annotated[Dec, Field(ge=0, le=Decimal("0.5"))] = Decimal("0.005")


def default_symbols() -> dict[str, SymbolConfig]:
    return {
        "BTCUSDT": SymbolConfig(
            aliases=("bitcoin", "btc", "xbt", "satoshi"),
            tick_size=Decimal("0.1"),
            qty_step=Decimal("0.001"),
            min_qty=Decimal("0.001"),
            min_notional=Decimal("5"),
        ),
        "ETHUSDT": SymbolConfig(
            aliases=("ethereum", "eth", "ether", "vitalik"),
            tick_size=Decimal("0.01"),
            qty_step=Decimal("0.01"),
            min_qty=Decimal("0.01"),
            min_notional=Decimal("5"),
            maintenance_margin_rate=Decimal("0.01"),
        ),
    }


def merge_symbols(given: Any, base: dict[str, Any] | None = None) -> Any:
    """`given` ([symbols] as read) laid over `base` (the defaults): per symbol, per key.

    Anything that is not a table of tables is returned as it is, for validation to name.
    """
    if not isinstance(given, dict):
        return given
    if base is None:
        base = {name: config.model_dump() for name, config in default_symbols().items()}
    merged: dict[Any, Any] = {}
    for name, defaults in base.items():
        override = given.get(name)
        if override is None:
            merged[name] = defaults
        elif isinstance(override, dict) and isinstance(defaults, dict):
            merged[name] = {**defaults, **override}
        else:
            merged[name] = override
    for name, value in given.items():
        if name not in merged:
            merged[name] = value
    return merged
