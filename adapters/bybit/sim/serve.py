"""Run the simulator as a process (`lorabot exchange-sim`) until SIGINT or SIGTERM.

Kept apart from the command's click shell (bot/commands/exchange_sim.py) so the simulator
package has no CLI dependency; `out` receives the banner that tells a user how to point lorabot
at it (stdout for the command, which is its only result).
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from adapters.bybit.sim.server import SimConfig, Simulator
from bot.errors import UserError
from bot.shutdown import stop_on_signals


def banner(simulator: Simulator, config: SimConfig) -> str:
    """Where each endpoint is, and the lines of config and environment that reach it."""
    return (
        f"Bybit v5 simulator on {simulator.url}\n"
        f"  REST        {simulator.url}\n"
        f"  public ws   {simulator.ws_public_url}/linear  (and /spot)\n"
        f"  private ws  {simulator.ws_private_url}\n"
        f"  API key     {config.api_key}   secret {config.api_secret}\n"
        "Point lorabot at it with:\n"
        "  [bybit]\n"
        f'  rest_url = "{simulator.url}"\n'
        f"  export BYBIT_API_KEY={config.api_key} BYBIT_API_SECRET={config.api_secret}\n"
    )


async def serve_until_stopped(config: SimConfig, out: TextIO) -> None:
    """Start, print the banner to `out`, serve until a stop signal; UserError if the port is
    taken."""
    simulator = Simulator(config)
    try:
        await simulator.start()
    except OSError as error:
        raise UserError(
            f"exchange-sim: cannot listen on {config.host}:{config.port}: {error.strerror}"
        ) from None
    out.write(banner(simulator, config))
    out.flush()
    stop = asyncio.Event()
    stop_on_signals(stop.set)
    try:
        await stop.wait()
    finally:
        await simulator.stop()
