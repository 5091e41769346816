"""`lorabot download-data`: the click shell over `adapters.bybit.download.download_klines`.

The adapter is imported inside the command, so `lorabot --help` loads none of it (nor aiohttp).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click

from bot.cli import config_option, settings_for
from bot.clock import LiveClock
from bot.commands.paths import writable_file
from bot.events import iso, parse_time
from bot.log import setup_logging


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
@click.option(
    "--funding",
    is_flag=True,
    help="Download the funding-rate history instead of klines, as the JSON that "
    "`lorabot backtest --funding` reads (default --out: <data_dir>/funding/bybit/SYMBOL.json).",
)
@click.option(
    "--no-progress",
    is_flag=True,
    help="No progress bar on stderr (there is none off a terminal): a progress log line every "
    "few pages instead.",
)
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
    funding: bool,
    no_progress: bool,
    config_path: Path | None,
) -> None:
    """Download historical klines from Bybit into the backtester's bars CSV.

    Pages through /v5/market/kline within Bybit's rate limits and resumes an interrupted
    download: run the same command again. Prints the file, the bars written and the range.
    """
    from adapters.bybit import intervals
    from adapters.bybit.download import LOG_EVERY, download_klines

    settings = settings_for(ctx, config_path)
    setup_logging(settings.log.level, settings.log.format, file=settings.log.file)
    try:
        code = intervals.normalise(interval)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--interval") from None
    begin = _date(start, "--from")
    finish = _date(end, "--to", end=True) if end else LiveClock().now()
    category = category or settings.bybit.category
    bar = not no_progress and sys.stderr.isatty()
    if funding:
        from adapters.bybit.funding_download import download_funding

        target = out or settings.data_dir / "funding" / "bybit" / f"{symbol.upper()}.json"
        writable_file(target, "--out")
        got = asyncio.run(
            download_funding(
                settings, symbol, begin, finish, target, category=category, clock=LiveClock()
            )
        )
        click.echo(f"{got.path}\t{got.written} funding rates written")
        return
    path = out or settings.data_dir / "bars" / "bybit" / category / f"{symbol.upper()}-{code}.csv"
    writable_file(path, "--out")
    result = asyncio.run(
        download_klines(
            settings,
            symbol,
            code,
            begin,
            finish,
            path,
            category=category,
            progress=bar,
            log_every=0 if bar else LOG_EVERY,
            clock=LiveClock(),
        )
    )
    span = (
        f"{iso(result.first)} .. {iso(result.last)}" if result.first and result.last else "no bars"
    )
    resumed = f" (resumed after {iso(result.resumed_after)})" if result.resumed_after else ""
    click.echo(f"{result.path}\t{result.written} bars written\t{span}{resumed}")
