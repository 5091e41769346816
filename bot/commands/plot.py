"""`lorabot plot RUN_DIR [--from --to]`: redraw a backtest's price charts for a window, from the
run folder's own files (prices.csv, trades.csv, decisions.csv, headlines.csv)."""

from __future__ import annotations

from pathlib import Path

import click

from bot.commands.backtest import _time
from bot.errors import UserError


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--from", "start", metavar="TIME", help="Draw only from TIME (ISO-8601).")
@click.option("--to", "end", metavar="TIME", help="... up to TIME.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the charts go (default: RUN_DIR, replacing its price_<SYMBOL>.png).",
)
def plot(run_dir: Path, start: str | None, end: str | None, out_dir: Path | None) -> None:
    """Write price_<SYMBOL>.png per symbol (fills with their reasons, the composite confidence,
    the headlines that moved the target) and trades.html (the same, interactive and
    self-contained), and print their paths."""
    from bot import chart_data
    from bot.trade_charts import price_pngs
    from bot.trade_charts_html import write_page

    first, last = _time(start, "--from"), _time(end, "--to")
    if first is not None and last is not None and last <= first:
        raise UserError(f"--to {last.isoformat()} is not after --from {first.isoformat()}")
    data = chart_data.load(run_dir, first, last)
    if not any(len(series) for series in data.prices.values()):
        raise UserError(f"{run_dir}: no bars between --from and --to")
    out = out_dir or run_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out {out}: cannot make the folder ({error.strerror})") from None
    written = [
        *price_pngs(data, out),
        write_page(data, out / "trades.html", f"lorabot — {run_dir.name}"),
    ]
    for path in written:
        click.echo(str(path))
