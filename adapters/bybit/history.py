"""Recent bars from `/v5/market/kline` for a market-aware model's feature window at start.

An impact model reads features of the bars before each headline (returns up to a day, a day's
volatility, a week's volume z-score): streamed bars alone would leave them empty for the
daemon's first week. `fill_feature_windows` fetches the span each model's window needs, at the
spacing it was trained on, and hands those bars to the window alone (the engine never trades
on them). Only bars that had closed by the clock's now are kept: a bar still forming would be a
look at the future of the first headline. Bybit unreachable is a warning, never a stop: the
window then starts empty, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from adapters.bybit import intervals
from adapters.bybit.endpoints import endpoints
from adapters.bybit.rest import BybitRest
from bot.clock import Clock
from bot.config import Settings
from bot.events import Bar
from bot.log import get_logger
from bot.signals import History, ModelReader

log = get_logger(__name__)


def interval_code(settings: Settings, interval_s: int) -> str:
    """Bybit's code for a spacing in seconds (0: the streamed `[bybit] kline_interval`)."""
    if not interval_s:
        return intervals.normalise(settings.bybit.kline_interval)
    for code in intervals.CODES:
        if intervals.fixed_ms(code) == interval_s * 1000:
            return code
    raise ValueError(f"no Bybit kline interval is {interval_s} s long")


async def recent_bars(settings: Settings, need: History, clock: Clock) -> list[Bar]:
    """The closed bars of the last `need.seconds`, oldest first."""
    code = interval_code(settings, need.interval_s)
    now_ms = int(clock.now().timestamp() * 1000)
    start_ms = now_ms - need.seconds * 1000
    async with BybitRest(settings.bybit, endpoints(settings).rest, clock) as rest:
        bars = await rest.klines(settings.bybit.category, need.symbol, code, start_ms, now_ms)
    now = clock.now()
    return [bar for bar in bars if bar.ts <= now]


async def fill_feature_windows(
    settings: Settings, readers: Sequence[ModelReader], clock: Clock
) -> int:
    """Give each market-aware model's window its history; returns how many bars were given."""
    given = 0
    for reader in readers:
        market = reader.market
        if market is None or market.history is None:
            continue
        need = market.history
        try:
            bars = await asyncio.wait_for(
                recent_bars(settings, need, clock), settings.bybit.rest_timeout * 6
            )
        except Exception as error:  # offline, or Bybit unreachable: the window starts empty
            log.warning(
                "impact model: no bar history from Bybit; its features stay empty until "
                "enough bars have streamed",
                symbol=need.symbol,
                error=str(error) or type(error).__name__,
            )
            continue
        for bar in bars:
            market.features.on_bar(bar)
        given += len(bars)
        log.info(
            "impact model: feature window filled from Bybit klines",
            model=reader.model.model_id,
            symbol=need.symbol,
            bars=len(bars),
            since=bars[0].ts_open.isoformat() if bars else None,
        )
    return given
