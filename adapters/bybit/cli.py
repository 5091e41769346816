"""`lorabot download-data` and `lorabot exchange-sim`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from adapters.bybit import intervals
from bot.cli import config_option, settings_for
from bot.config import parse_duration
from bot.errors import UserError
from bot.events import iso, parse_time
from bot.log import setup_logging
from bot.shutdown import stop_on_signals


def _date(value: str, option: str, *, end: bool = False) -> datetime:
    """A date (`2024-06-30`; as --to it includes that whole day) or an ISO-8601 time."""
    text = value.strip()
    try:
        moment = parse_time(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date such as 2024-01-01", param_hint=option
        ) from None
    if end and len(text) == 10:
        moment += timedelta(days=1)
    return moment


@click.command("download-data")
@click.option("--symbol", required=True, help="Exchange symbol, e.g. BTCUSDT.")
@click.option(
    "--interval",
    default="60",
    show_default=True,
    help="Bybit interval (1 3 5 15 30 60 120 240 360 720 D W M, or 1h, 4h, 1d).",
)
@click.option("--from", "start", required=True, help="First day (or ISO time), UTC.")
@click.option("--to", "end", default=None, help="Last day, included (or ISO time); default now.")
@click.option(
    "--category",
    type=click.Choice(["linear", "spot"]),
    default=None,
    help="Default: [bybit] category.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Bars CSV to write or resume (default: <data_dir>/bars/bybit/...).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@config_option
@click.pass_context
def download_data(
    ctx: click.Context,
    symbol: str,
    interval: str,
    start: str,
    end: str | None,
    category: str | None,
    out: Path | None,
    no_progress: bool,
    config_path: Path | None,
) -> None:
    """Download historical klines from Bybit into the backtester's bars CSV.

    Pages through /v5/market/kline within Bybit's rate limits and resumes an interrupted
    download: run the same command again. Prints the file, the bars written and the range.
    """
    from adapters.bybit.download import download_klines
    from bot.clock import LiveClock

    settings = settings_for(ctx, config_path)
    setup_logging(settings.log.level, settings.log.format, file=settings.log.file)
    try:
        code = intervals.normalise(interval)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--interval") from None
    begin = _date(start, "--from")
    finish = _date(end, "--to", end=True) if end else datetime.now(UTC)
    category = category or settings.bybit.category
    path = out or settings.data_dir / "bars" / "bybit" / category / f"{symbol.upper()}-{code}.csv"
    result = asyncio.run(
        download_klines(
            settings,
            symbol,
            code,
            begin,
            finish,
            path,
            category=category,
            progress=not no_progress and sys.stderr.isatty(),
            clock=LiveClock(),
        )
    )
    span = (
        f"{iso(result.first)} .. {iso(result.last)}" if result.first and result.last else "no bars"
    )
    resumed = f" (resumed after {iso(result.resumed_after)})" if result.resumed_after else ""
    click.echo(f"{result.path}\t{result.written} bars written\t{span}{resumed}")


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
    from adapters.bybit.sim import SimConfig, Simulator

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

    async def serve() -> None:
        simulator = Simulator(config)
        try:
            await simulator.start()
        except OSError as error:
            raise UserError(
                f"exchange-sim: cannot listen on {host}:{port}: {error.strerror}"
            ) from None
        click.echo(
            f"Bybit v5 simulator on {simulator.url}\n"
            f"  REST        {simulator.url}\n"
            f"  public ws   {simulator.ws_public_url}/linear  (and /spot)\n"
            f"  private ws  {simulator.ws_private_url}\n"
            f"  API key     {api_key}   secret {api_secret}\n"
            "Point lorabot at it with:\n"
            "  [bybit]\n"
            f'  rest_url = "{simulator.url}"\n'
            f"  export BYBIT_API_KEY={api_key} BYBIT_API_SECRET={api_secret}"
        )
        sys.stdout.flush()
        stop = asyncio.Event()
        stop_on_signals(stop.set)
        try:
            await stop.wait()
        finally:
            await simulator.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    click.echo("exchange-sim: stopped", err=True)
