"""`lorabot backtest`: replay a news file and a bars file (or the bundled sample) through the
engine and write a run folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from bot.cli import config_option, settings_for
from bot.clock import LiveClock
from bot.config import Settings
from bot.errors import UserError
from bot.events import parse_time
from bot.log import setup_logging

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample"


def sample_paths() -> tuple[Path, Path]:
    return SAMPLE_DIR / "news.jsonl", SAMPLE_DIR / "bars_btcusdt_15m.csv"


def _time(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise UserError(
            f"{flag} {value!r}: not a time (use ISO-8601, e.g. 2024-01-31T00:00Z)"
        ) from None


@click.command()
@click.option(
    "--news",
    "news_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="News file: JSONL NewsItems (as `lorabot news --record` writes) or CSV "
    "timestamp,source,title[,body][,link].",
)
@click.option(
    "--bars",
    "bars_options",
    multiple=True,
    metavar="[SYMBOL=]FILE",
    help="Bars: CSV timestamp,open,high,low,close,volume (bar open time), Bybit kline "
    "JSON, or Binance/freqtrade JSON [[ms,o,h,l,c,v],...]. Repeat as SYMBOL=FILE for a "
    "portfolio (one engine, one account); a lone FILE is --symbol's.",
)
@click.option(
    "--symbol", help="Which symbol a lone --bars FILE is (default: the first in [symbols])."
)
@click.option("--from", "start", metavar="TIME", help="Replay only events released from TIME.")
@click.option("--to", "end", metavar="TIME", help="... up to TIME.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder (default: a new folder under the data directory's backtests/).",
)
@click.option("--sample", is_flag=True, help="Use the bundled synthetic sample (offline).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Leave out bad rows of the news and bars files, each reported with its reason "
    "(default: a bad row refuses the file).",
)
@click.option(
    "--ledger",
    "ledger_url",
    metavar="URL",
    help="Trial ledger database (SQLAlchemy URL; default: the main store's [store] url).",
)
@click.option(
    "--funding",
    "funding_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Funding rates of the perpetual: CSV timestamp,symbol,rate or Bybit's funding history "
    "JSON (`lorabot download-data --funding`); default: the flat [paper] funding_rate.",
)
@click.option(
    "--no-lag",
    is_flag=True,
    help="Skip the lag test (by default the run is replayed once more with every decision a "
    "bar later: lag_sharpe).",
)
@click.option(
    "--lag",
    "lag_minutes",
    type=click.FloatRange(min=0, min_open=True),
    metavar="M",
    help="Also replay with every decision M minutes later (lag_minutes_sharpe).",
)
@click.option(
    "--null",
    "null_trials",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Replay N times with the labels permuted and N with coin-flip labels (null_p_value).",
)
@config_option
@click.pass_context
def backtest(
    ctx: click.Context,
    news_path: Path | None,
    bars_options: tuple[str, ...],
    symbol: str | None,
    start: str | None,
    end: str | None,
    out_dir: Path | None,
    sample: bool,
    progress: bool | None,
    skip_bad_rows: bool,
    funding_path: Path | None,
    ledger_url: str | None,
    no_lag: bool,
    lag_minutes: float | None,
    null_trials: int,
    config_path: Path | None,
) -> None:
    """Replay news and bars through the engine with a replay clock and the paper broker.

    Writes metrics.json, trades.csv, equity.csv, equity.png and the config it ran with into the
    run folder, and prints a summary table and the folder's path. The same inputs give
    byte-identical trades.csv and metrics.json.
    """
    settings = settings_for(ctx, config_path)
    setup_logging(
        settings.log.level if settings.log.level != "info" else "warning", settings.log.format
    )
    bars: dict[str, Path] | None = None
    bars_path: Path | None = None
    if sample:
        if news_path or bars_options:
            raise UserError("--sample replays the bundled data: leave out --news and --bars")
        news_path, bars_path = sample_paths()
        symbol = symbol or "BTCUSDT"
    elif not bars_options:
        raise UserError("--bars FILE is required (or --sample for the bundled data)")
    elif len(bars_options) == 1 and "=" not in bars_options[0]:
        bars_path = Path(bars_options[0])
    else:
        bars = portfolio_bars(bars_options, settings, symbol)
    if out_dir is None:
        stamp = LiveClock().now().strftime("%Y%m%d-%H%M%S")
        named = "-".join(bars) if bars else (symbol or settings.default_symbol)
        out_dir = settings.data_dir / "backtests" / f"{'sample' if sample else named}-{stamp}"
    from bot.backtest import LuckOptions, run_backtest
    from bot.report import print_summary, write_report

    result = run_backtest(
        settings,
        bars_path=bars_path,
        news_path=news_path,
        symbol=symbol,
        bars=bars,
        start=_time(start, "--from"),
        end=_time(end, "--to"),
        out_dir=out_dir,
        progress=progress,
        skip_bad_rows=skip_bad_rows,
        funding_path=funding_path,
        luck=LuckOptions(
            ledger_url=ledger_url, lag=not no_lag, lag_minutes=lag_minutes, null_trials=null_trials
        ),
    )
    paths = write_report(result)
    print_summary(result, paths)


def portfolio_bars(
    values: tuple[str, ...], settings: Settings, symbol: str | None
) -> dict[str, Path]:
    """`--bars SYMBOL=FILE ...` as symbol -> file, read as `lorabot analyze` reads them."""
    if symbol is not None:
        raise UserError("--symbol names a lone --bars FILE: give SYMBOL=FILE pairs without it")
    from bot.research.run_analysis import parse_bars_options
    from bot.symbols import SymbolTable

    return parse_bars_options(values, SymbolTable.from_settings(settings), settings.default_symbol)
