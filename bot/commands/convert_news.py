"""`lorabot convert-news`: a news file in another layout to the canonical news JSONL.

The conversion itself is `adapters.files.convert_news`; this shell turns options into a layout
and reports on stderr: each skipped row (with --skip-bad-rows) as `file:line: reason`, then one
summary line. The output file is the result; stdout stays empty.
"""

from __future__ import annotations

from pathlib import Path

import click

from bot.commands.paths import writable_file
from bot.events import iso


def _warn(message: str) -> None:
    click.echo(f"lorabot convert-news: {message}", err=True)


@click.command("convert-news")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path), metavar="IN")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path), metavar="OUT")
@click.option(
    "--delimiter",
    default=",",
    show_default=True,
    help="Field separator of IN: one character, or 'tab' (also '\\t') for tab-separated files.",
)
@click.option(
    "--columns",
    default="",
    metavar="FIELD=COLUMN,...",
    help="Which column of IN holds each field: timestamp and title (required), body, source, "
    "link, id. Default: the columns named like the fields.",
)
@click.option(
    "--time-format",
    default="",
    metavar="FORMAT",
    help="strptime format of the timestamps, e.g. '%d-%m-%Y %H:%M' (default: ISO-8601 or epoch).",
)
@click.option(
    "--timezone",
    "zone",
    default="UTC",
    show_default=True,
    help="Time zone of timestamps that carry none (an IANA name such as Europe/Berlin).",
)
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Write the good rows and report each bad one with its reason (default: a bad row "
    "refuses the file and nothing is written).",
)
def convert_news(
    source: Path,
    target: Path,
    delimiter: str,
    columns: str,
    time_format: str,
    zone: str,
    skip_bad_rows: bool,
) -> None:
    """Convert the news file IN to OUT, the JSONL that `lorabot backtest --news` reads.

    OUT holds one item per line, oldest first, times in UTC; rows with the same link (or id)
    are written once. Every bad row is named as IN:LINE with what is wrong.

    Example (the shared crypto news: ';'-separated, day-month-year dates, newest first):

    \b
      lorabot convert-news cryptonews.csv news.jsonl --delimiter ';'
        --columns timestamp=date,title=title,body=text,source=source,link=url
        --time-format '%d-%m-%Y %H:%M' --timezone UTC --skip-bad-rows
    """
    writable_file(target, "OUT")
    from adapters.files.convert_news import (
        NewsLayout,
        parse_columns,
        parse_delimiter,
        parse_timezone,
    )
    from adapters.files.convert_news import convert_news as convert

    layout = NewsLayout(
        delimiter=parse_delimiter(delimiter),
        columns=parse_columns(columns),
        time_format=time_format,
        timezone=parse_timezone(zone),
    )
    done = convert(source, target, layout, skip_bad_rows=skip_bad_rows)
    for row in done.bad:
        _warn(f"skipped {row}")
    first, last = done.items[0].received, done.items[-1].received
    summary = f"wrote {len(done.items)} items to {target} ({iso(first)} to {iso(last)})"
    if done.bad:
        summary += f"; skipped {len(done.bad)} bad row{'' if len(done.bad) == 1 else 's'}"
    if done.duplicates:
        summary += (
            f"; {done.duplicates} duplicate{'' if done.duplicates == 1 else 's'} written once"
        )
    _warn(summary)
