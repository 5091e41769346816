"""`lorabot exchange-sim`: the click shell over `adapters.bybit.sim.serve.serve_until_stopped`.

Options are parsed and checked here; the simulator is imported inside the command, so `lorabot
--help` loads none of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from bot.cli import config_option, settings_for
from bot.config import parse_duration
from bot.errors import UserError
from bot.log import setup_logging


@click.command("exchange-sim")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=int,
    help="REST and both websockets listen here (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--api-key", default="sim-key", show_default=True)
@click.option("--api-secret", default="sim-secret", show_default=True)
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the price path.")
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=float,
    help="Market time per second of wall-clock time (60: a 1-minute bar per second).",
)
@click.option("--tick", default="250ms", show_default=True, help="Interval of market updates.")
@click.option("--balance", default="100000", show_default=True, help="USDT in the account.")
@click.option(
    "--rate-limit",
    default=10,
    show_default=True,
    type=int,
    help="Order calls per second per key before 10006 (0: unlimited).",
)
@click.option(
    "--clock-skew-ms",
    default=0,
    show_default=True,
    type=int,
    help="Run the simulator's clock ahead (+) or behind (-) the host's.",
)
@config_option
@click.pass_context
def exchange_sim(
    ctx: click.Context,
    port: int,
    host: str,
    api_key: str,
    api_secret: str,
    seed: int,
    speed: float,
    tick: str,
    balance: str,
    rate_limit: int,
    clock_skew_ms: int,
    config_path: Path | None,
) -> None:
    """Start the local Bybit v5 simulator (REST + websockets on one port) until Ctrl-C.

    Point lorabot at it with `[bybit] rest_url = "http://HOST:PORT"` (the websockets follow) and
    BYBIT_API_KEY / BYBIT_API_SECRET set to the simulator's key and secret.
    """
    from adapters.bybit.sim import SimConfig
    from adapters.bybit.sim.serve import serve_until_stopped

    settings = settings_for(ctx, config_path)
    setup_logging(settings.log.level, settings.log.format, file=settings.log.file)
    try:
        tick_s = parse_duration(tick)
        funds = Decimal(balance)
    except (ValueError, InvalidOperation) as error:
        raise UserError(f"exchange-sim: {error}") from None
    if tick_s <= 0 or speed <= 0:
        raise UserError("exchange-sim: --tick and --speed must be positive")
    config = SimConfig(
        host=host,
        port=port,
        api_key=api_key,
        api_secret=api_secret,
        seed=seed,
        speed=speed,
        tick_interval=tick_s,
        balance=funds,
        order_rate_limit=rate_limit,
        clock_skew_ms=clock_skew_ms,
    )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_stopped(config, sys.stdout))
    click.echo("exchange-sim: stopped", err=True)
