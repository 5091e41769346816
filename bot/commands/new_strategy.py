"""`lorabot new-strategy NAME`: write a documented starter strategy that runs as is."""

from __future__ import annotations

from pathlib import Path

import click

from bot.errors import UserError


@click.command(name="new-strategy")
@click.argument("name")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write the file in.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def new_strategy(name: str, folder: Path, force: bool) -> None:
    """Write NAME's strategy file (e.g. NewsMomentum -> news_momentum.py) and say how to use it."""
    from strategies.starter import class_name, file_name, starter

    try:
        cls = class_name(name)
    except ValueError as error:
        raise UserError(f"new-strategy: {error}") from None
    path = folder / file_name(cls)
    if path.exists() and not force:
        raise UserError(f"{path} exists (use --force to overwrite it)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(starter(cls, str(path)))
    except OSError as error:
        raise UserError(f"{path}: cannot write it ({error.strerror})") from None
    click.echo(f"wrote {path}")
    click.echo(f'use it: [strategy] use = "{path}:{cls}" in config.toml, then')
    click.echo("  lorabot backtest --config config.toml --sample")
