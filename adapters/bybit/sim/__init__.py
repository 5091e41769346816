"""A local Bybit v5 exchange simulator: REST and websockets on one port, for tests and experiments.

It speaks Bybit v5 closely enough that the official pybit client, pointed at it, places, queries,
amends and cancels orders with real HMAC signatures checked, and that pybit's `WebSocket` receives
klines, trades, tickers and private updates from it. Start it with `lorabot exchange-sim`.
"""

from adapters.bybit.sim.server import SimConfig, Simulator

__all__ = ["SimConfig", "Simulator"]
