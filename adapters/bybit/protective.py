"""A position's protective levels on Bybit: `POST /v5/position/trading-stop`.

In live mode the venue, not lorabot, watches a perpetual's stop-loss, take-profit and trailing
stop: it sees every trade, lorabot only bars, and it still acts while lorabot is down. The
engine says what it wants per symbol (`BybitBroker.set_protection`); this desk keeps that and
sends only what differs from what Bybit holds:

- `tpslMode = "Full"` (the whole position), triggered by the last price, market exits;
- a level is sent only when it changed (an absent key keeps Bybit's; "0" cancels one), so
  re-sending a trailing stop never restarts its trail;
- 34040 ("not modified") is success; a refusal (10001: the market is already past the level,
  no position) is logged as an error: the position is then not protected by the venue;
- on reconciliation the position list's `stopLoss` / `takeProfit` / `trailingStop` are compared
  with what is wanted and anything missing or different is placed again (a restart, a level
  someone moved in the web UI).

When a level triggers, Bybit creates the closing order itself (no orderLinkId; `stopOrderType`
StopLoss / TakeProfit / TrailingStop, `createType` CreateByStopLoss...): the mirror announces it
as a `VenueExit` before its fills (mirror.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal
from typing import Any

from adapters.bybit import errors
from adapters.bybit.parse import VenuePosition
from adapters.bybit.rest import BybitRest
from bot.log import get_logger
from bot.protocols import Protection
from bot.symbols import Instrument

log = get_logger(__name__)

ZERO = Decimal(0)
Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


def _by_key(protection: Protection) -> dict[str, Decimal | None]:
    """The levels under Bybit's names."""
    return {
        "stopLoss": protection.stop_loss,
        "takeProfit": protection.take_profit,
        "trailingStop": protection.trailing_stop,
    }


class ProtectionDesk:
    """What the engine wants on each position, and the calls that make Bybit hold it."""

    def __init__(
        self,
        rest: BybitRest,
        instruments: Mapping[str, Instrument],
        venue_positions: Mapping[str, VenuePosition],
        spawn: Spawn,
    ) -> None:
        self.rest = rest
        self.instruments = instruments
        self.venue_positions = venue_positions
        self._spawn = spawn
        self.wanted: dict[str, Protection] = {}
        self.held: dict[str, Protection] = {}  # what Bybit holds, as far as our calls and reads say
        self.refused: dict[str, str] = {}  # symbol -> Bybit's reason for the last refusal
        self.calls = 0  # trading-stop calls sent (tests, status)
        self._locks: dict[str, asyncio.Lock] = {}

    def want(self, symbol: str, protection: Protection) -> None:
        """The engine's levels for `symbol` (empty: the position is flat, nothing to keep)."""
        if protection.empty:
            self.wanted.pop(symbol, None)
            self.held.pop(symbol, None)
            return
        wanted = self._on_ticks(symbol, protection)
        self.wanted[symbol] = wanted
        if self._differences(symbol, wanted):
            self._spawn(self.place(symbol))

    def venue_view(self, symbol: str) -> Protection:
        held = self.held.get(symbol)
        if held is not None:
            return held
        position = self.venue_positions.get(symbol)
        return position.protection if position is not None else Protection()

    async def place(self, symbol: str, why: str = "levels changed") -> None:
        """Send what differs between the wanted and the held levels (one call at a time)."""
        lock = self._locks.setdefault(symbol, asyncio.Lock())
        async with lock:
            wanted = self.wanted.get(symbol)
            if wanted is None:
                return
            changes = self._differences(symbol, wanted)
            if not changes:
                return
            params: dict[str, Any] = {
                "category": "linear",
                "symbol": symbol,
                "positionIdx": 0,
                "tpslMode": "Full",
                **changes,
            }
            if "stopLoss" in changes or "trailingStop" in changes:
                params["slTriggerBy"] = "LastPrice"
            if "takeProfit" in changes:
                params["tpTriggerBy"] = "LastPrice"
            self.calls += 1
            try:
                await self.rest.request("POST", "/v5/position/trading-stop", params, signed=True)
            except errors.NotModified:
                pass
            except errors.InvalidRequest as error:
                self.refused[symbol] = error.message
                log.error(
                    "bybit: protective levels refused; the position is not protected by the venue",
                    symbol=symbol,
                    levels=changes,
                    error=str(error),
                )
                return
            except errors.CredentialsError:
                raise  # fatal: the broker stops the run
            except errors.BybitError as error:
                log.warning(
                    "bybit: protective levels not placed; reconciliation retries",
                    symbol=symbol,
                    error=str(error),
                )
                return
            self.refused.pop(symbol, None)
            self.held[symbol] = wanted
            log.info("bybit: protective levels placed", symbol=symbol, why=why, **changes)

    async def check(self) -> None:
        """After reconciliation read the positions: re-place what is missing or differs."""
        for symbol in list(self.wanted):
            position = self.venue_positions.get(symbol)
            if position is None or position.qty == 0:
                # Bybit drops the levels with the position; a new one gets new levels.
                self.wanted.pop(symbol, None)
                self.held.pop(symbol, None)
                continue
            self.held[symbol] = position.protection  # the read is the truth now
            changes = self._differences(symbol, self.wanted[symbol])
            if changes:
                log.warning(
                    "bybit: a position's protective levels differ from lorabot's; placing them",
                    symbol=symbol,
                    venue=_text(position.protection),
                    wanted=_text(self.wanted[symbol]),
                )
                await self.place(symbol, why="reconciliation")
            else:
                log.info("bybit: protective levels attached", symbol=symbol)

    def _differences(self, symbol: str, wanted: Protection) -> dict[str, str]:
        held = _by_key(self.venue_view(symbol))
        return {
            key: "0" if value is None else str(value)
            for key, value in _by_key(wanted).items()
            if value != held[key]
        }

    def _on_ticks(self, symbol: str, protection: Protection) -> Protection:
        """To the tick (the engine rounds toward the market already; this only guarantees it)."""
        instrument = self.instruments.get(symbol)
        if instrument is None:
            return protection
        tick = instrument.tick_size

        def price(value: Decimal | None) -> Decimal | None:
            return None if value is None else instrument.round_price(value)

        trail = protection.trailing_stop
        if trail is not None:
            trail = max(tick, instrument.round_price(trail))
        return Protection(price(protection.stop_loss), price(protection.take_profit), trail)


def _text(protection: Protection) -> dict[str, str | None]:
    return {k: None if v is None else str(v) for k, v in _by_key(protection).items()}
