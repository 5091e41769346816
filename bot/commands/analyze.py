"""`lorabot analyze`: does the news move the price? An event study of a news file's signals
against one bars file per symbol, written as analysis.json, analysis.md, two charts and
report.html."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli import config_option, settings_for
from bot.clock import LiveClock
from bot.commands.backtest import _time
from bot.errors import UserError
from bot.log import setup_logging


@click.command()
@click.option(
    "--news",
    "news_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="News file: JSONL NewsItems (as `lorabot news --record` or `convert-news` write) or "
    "CSV timestamp,source,title[,body][,link].",
)
@click.option(
    "--bars",
    "bars_values",
    multiple=True,
    metavar="[SYMBOL=]FILE",
    help="Bars of one symbol (repeat per symbol; a lone FILE is the first symbol in [symbols]): "
    "CSV, Bybit kline JSON or freqtrade JSON.",
)
@click.option(
    "--horizons",
    default="1h,4h,1d",
    show_default=True,
    help="Forward horizons, comma-separated, each a whole number of the bars' interval.",
)
@click.option("--from", "start", metavar="TIME", help="Study only bars opening from TIME.")
@click.option("--to", "end", metavar="TIME", help="... and before TIME.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: a new folder under the data directory's analyses/).",
)
@click.option("--draws", default=1000, show_default=True, help="Bootstrap draws (range 50-100000).")
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap.")
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Leave out bad rows of the news and bars files, each reported with its reason "
    "(default: a bad row refuses the file).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr while the model reads (default: when stderr is a terminal).",
)
@config_option
@click.pass_context
def analyze(
    ctx: click.Context,
    news_path: Path,
    bars_values: tuple[str, ...],
    horizons: str,
    start: str | None,
    end: str | None,
    out_dir: Path | None,
    draws: int,
    seed: int,
    skip_bad_rows: bool,
    progress: bool | None,
    config_path: Path | None,
) -> None:
    """Event study: the return after each bearish, neutral and bullish signal, per horizon.

    The signals come from the same signal service as a backtest (model, cache, symbol tagging,
    market-wide weighting); each enters at the first bar opening at or after its received time.
    Prints the summary sentence and the label table, and writes analysis.json (layout in the
    README, "Is there an edge?"), analysis.md, event_study.png, calibration.png and report.html.
    """
    settings = settings_for(ctx, config_path)
    setup_logging(
        settings.log.level if settings.log.level != "info" else "warning", settings.log.format
    )
    if not 50 <= draws <= 100_000:
        raise UserError(f"--draws {draws}: outside the range 50-100000")
    from bot.research.analysis_output import write_analysis
    from bot.research.analysis_tables import tables
    from bot.research.event_study import StudyOptions
    from bot.research.report_html import format_cell
    from bot.research.run_analysis import (
        AnalysisRequest,
        parse_bars_options,
        parse_horizons,
        run_analysis,
    )
    from bot.symbols import SymbolTable

    symbols = SymbolTable.from_settings(settings)
    request = AnalysisRequest(
        news_path=news_path,
        bars=parse_bars_options(bars_values, symbols, settings.default_symbol),
        horizons=parse_horizons(horizons),
        start=_time(start, "--from"),
        end=_time(end, "--to"),
        skip_bad_rows=skip_bad_rows,
        progress=progress,
    )
    if out_dir is None:
        stamp = LiveClock().now().strftime("%Y%m%d-%H%M%S")
        out_dir = settings.data_dir / "analyses" / f"{next(iter(request.bars))}-{stamp}"
    run = run_analysis(settings, request, StudyOptions(draws=draws, seed=seed))
    try:
        written = write_analysis(run.document, out_dir)
    except OSError as error:
        raise UserError(f"--out {out_dir}: cannot write the analysis ({error.strerror})") from None
    source = f"{run.model_calls} model calls" if run.model_calls else "every answer from the cache"
    click.echo(f"{run.n_news} news items, {run.n_signals} signals ({source})")
    for document in run.document["symbols"].values():
        click.echo("")
        click.echo(document["summary"])
        for warning in document["warnings"]:
            click.echo(f"  warning: {warning}")
        table = tables(document)[0]
        click.echo(table.caption)
        widths = [
            max(len(str(c)), *(len(format_cell(row[i])) for row in table.rows))
            for i, c in enumerate(table.columns)
        ]
        click.echo("  ".join(str(c).rjust(w) for c, w in zip(table.columns, widths, strict=True)))
        for row in table.rows:
            cells = (format_cell(cell).rjust(w) for cell, w in zip(row, widths, strict=True))
            click.echo("  ".join(cells))
    click.echo(f"\nwrote {', '.join(sorted(written))} to {out_dir}")
