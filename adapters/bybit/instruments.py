"""Instrument rules from Bybit's instruments-info, for every configured symbol.

Live modes trade by the venue's current filters, not the ones written in config: a tick size or
lot step Bybit changed last week would otherwise get every order refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from adapters.bybit.errors import BybitError
from adapters.bybit.fields import ParseError
from adapters.bybit.parse import instrument_from_info
from adapters.bybit.rest import BybitRest
from bot.errors import UserError
from bot.symbols import Instrument


async def fetch_instruments(
    rest: BybitRest, category: str, symbols: Sequence[str]
) -> dict[str, Instrument]:
    """One query per symbol (the whole linear list is hundreds of entries); raises UserError for
    a symbol Bybit does not list, or lists but does not trade, in `category`."""

    async def one(symbol: str) -> Instrument:
        try:
            items = await rest.instruments(category, symbol)
        except BybitError as error:
            raise UserError(
                f"could not read Bybit's rules for {symbol} ({category}) from {rest.base_url}: "
                f"{error}"
            ) from None
        match = [item for item in items if item.get("symbol") == symbol]
        if not match:
            raise UserError(
                f"Bybit does not list {symbol} in category {category!r} "
                f"(instruments-info at {rest.base_url}); check [symbols] and [bybit] category"
            )
        status = str(match[0].get("status") or "Trading")
        if status != "Trading":
            raise UserError(
                f"Bybit lists {symbol} ({category}) with status {status!r}, not 'Trading'"
            )
        try:
            return instrument_from_info(category, match[0])
        except ParseError as error:
            raise UserError(f"unreadable instrument rules for {symbol}: {error}") from None

    # One symbol failing must not leave the others' queries running: they would reopen the
    # session the caller is about to close (an "Unclosed client session" at exit).
    tasks = [asyncio.ensure_future(one(symbol)) for symbol in symbols]
    try:
        found = await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {instrument.symbol: instrument for instrument in found}
