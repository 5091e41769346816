"""The only entry points the engine needs from the Bybit adapter (wired in `bot/assemble.py`).

Each takes the run's `Clock`: every timestamp the adapter puts into an event, a record or a
signature comes from it (bot/clock.py is the only reader of the system clock).

- `public_stream(settings, symbols, clock)`: a `MarketStream` of bars, trades and tickers.
- `fetch_instruments(settings, symbols, clock)`: the venue's trading rules per symbol.
- `live_broker(settings, secrets, instruments, clock)`: the `Broker` for live mode, with its private
  stream; its `start()` measures the clock offset, checks the keys (FatalError if refused) and
  connects the private stream.
- `mainnet_summary(settings, symbols)` / `require_mainnet_confirmation(...)`: what `lorabot run`
  prints, and refuses without `--confirm-mainnet`, before trading real money.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adapters.bybit.broker import BybitBroker
from adapters.bybit.endpoints import endpoints
from adapters.bybit.instruments import fetch_instruments as _fetch
from adapters.bybit.public import BybitPublicStream
from adapters.bybit.rest import BybitRest
from bot.clock import Clock
from bot.config import Secrets, Settings
from bot.errors import UserError
from bot.protocols import MarketStream
from bot.symbols import Instrument


def public_stream(settings: Settings, symbols: Sequence[str], clock: Clock) -> MarketStream:
    return BybitPublicStream(settings, symbols, clock)


async def fetch_instruments(
    settings: Settings, symbols: Sequence[str], clock: Clock
) -> dict[str, Instrument]:
    async with BybitRest(settings.bybit, endpoints(settings).rest, clock) as rest:
        return await _fetch(rest, settings.bybit.category, symbols)


def live_broker(
    settings: Settings, secrets: Secrets, instruments: Mapping[str, Instrument], clock: Clock
) -> BybitBroker:
    return BybitBroker(settings, secrets, instruments, clock)


def mainnet_summary(settings: Settings, symbols: Sequence[str]) -> str:
    """The lines shown before the first order when real money is at stake."""
    urls = endpoints(settings)
    risk = settings.risk
    lines = [
        f"About to trade REAL MONEY on Bybit (network = {settings.bybit.network!r}, "
        "hosts are not demo/testnet/loopback):",
        f"  REST       {urls.rest}",
        f"  private ws {urls.ws_private}",
        f"  category   {settings.bybit.category}",
        f"  symbols    {', '.join(symbols)}",
        f"  max notional per symbol {risk.max_notional} {settings.engine.quote_currency}, "
        f"max daily loss {risk.max_daily_loss:.1%}, "
        f"at most {risk.max_orders_per_minute} orders a minute",
        f"  sizing: {settings.strategy.fraction:.0%} of equity x confidence "
        f"(cap {settings.strategy.max_fraction:.0%}), {settings.strategy.order_type} orders",
        f"  kill switch: create {settings.kill_switch_path} (or run `lorabot kill`)",
    ]
    return "\n".join(lines)


def require_mainnet_confirmation(settings: Settings, confirmed: bool) -> None:
    """Refuse to trade real money (`Endpoints.is_real_money`) without the flag."""
    urls = endpoints(settings)
    if urls.is_real_money and not confirmed:
        raise UserError(
            f"[bybit] orders go to {urls.rest} (private stream {urls.ws_private}), which is real "
            'money: add --confirm-mainnet to proceed (or use network = "demo" / "testnet" with '
            "no rest_url / ws_private_url pointing elsewhere)"
        )
