"""The `lorabot` command line (also `python -m bot`).

Commands are loaded lazily from the package that owns them, so `lorabot --help` and the commands
that need no model never import torch. stdout carries only a command's results; logs and progress
bars go to stderr. A bad input is reported as one line and a non-zero exit, never a traceback
(set LORABOT_DEBUG=1 to see one).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bot.errors import UserError

if TYPE_CHECKING:  # pydantic's models take longer to build than `--help` may
    from bot.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

# name -> (module:attribute, one-line help). The help is here so that `lorabot --help` does not
# have to import every command's dependencies.
COMMANDS: dict[str, tuple[str, str]] = {
    "backtest": ("bot.commands.backtest:backtest", "Replay news and bars through the engine."),
    "plot": (
        "bot.commands.plot:plot",
        "Redraw a backtest's price charts (fills, composite, headlines) for a window.",
    ),
    "analyze": (
        "bot.commands.analyze:analyze",
        "Does the news move the price? Event study of a news file's signals.",
    ),
    "run": ("bot.commands.run:run", "Run the trading daemon (paper or live)."),
    "status": ("bot.commands.status:status", "Show positions, equity and recent signals."),
    "kill": ("bot.commands.status:kill", "Flip the kill switch: flatten and halt the daemon."),
    "config": ("bot.commands.status:config_command", "Check a config file and print it resolved."),
    "train": (
        "bot.commands.train:train",
        "Fine-tune a sentiment model (LoRA, QLoRA, prefix, ...).",
    ),
    "eval": ("bot.commands.train:eval_command", "Evaluate a model on a labelled data set."),
    "compare": (
        "bot.commands.train:compare",
        "Train several methods on one split and compare them.",
    ),
    "export": (
        "bot.commands.train:export",
        "Export a trained model for the serving layer / vLLM.",
    ),
    "classify": (
        "bot.commands.classify:classify",
        "Classify headlines with the configured model.",
    ),
    "serve": ("bot.commands.serve:serve", "Start a vLLM server for exported models."),
    "news": ("bot.commands.news:news", "Fetch configured feeds once, or record them to JSONL."),
    "convert-news": (
        "bot.commands.convert_news:convert_news",
        "Convert a CSV/TSV news file to the canonical news JSONL.",
    ),
    "download-data": (
        "bot.commands.download_data:download_data",
        "Download historical klines from Bybit into a bars CSV.",
    ),
    "hyperopt": (
        "bot.commands.hyperopt:hyperopt",
        "Tune the strategy's parameters walk-forward on Optuna.",
    ),
    "new-strategy": (
        "bot.commands.new_strategy:new_strategy",
        "Write a documented starter strategy file that runs as is.",
    ),
    "exchange-sim": (
        "bot.commands.exchange_sim:exchange_sim",
        "Start the local Bybit v5 simulator (REST + websockets).",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                return _unavailable(name, module_name)
            raise
        command = getattr(module, attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, module: str) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def missing(args: tuple[str, ...]) -> None:
        raise UserError(f"'lorabot {name}' is not available in this build ({module} is missing)")

    return missing


def config_option(function: F) -> F:
    """`--config PATH` on every command, as well as on the group."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Config file (default: ./config.toml if present, else built-in defaults).",
    )(function)


def settings_for(ctx: click.Context, config_path: Path | None) -> Settings:
    """Settings from the command's `--config`, else the group's, else the default search."""
    from bot.config import ConfigError, load_settings

    root = ctx.find_root()
    path = config_path or (root.obj or {}).get("config_path")
    try:
        return load_settings(path)
    except ConfigError as error:
        raise UserError(str(error)) from None


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@config_option
@click.version_option(package_name="lorabot")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """lorabot: trade Bybit on a fine-tuned language model's reading of the news.

    Start with `lorabot backtest --sample` (offline, synthetic sample data), then
    `lorabot run --mode paper`. Every command takes --config PATH; without it ./config.toml is
    used if present, else the built-in defaults (equal to the shipped config.toml).
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn every expected failure into one line on stderr and an exit code."""
    debug = bool(os.environ.get("LORABOT_DEBUG"))
    try:
        cli.main(args=argv, prog_name="lorabot", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("lorabot: aborted", err=True)
        sys.exit(130)
    except click.UsageError as error:
        command = error.ctx.command_path if error.ctx else "lorabot"
        click.echo(f"{command}: error: {error.format_message()} (see '{command} --help')", err=True)
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"lorabot: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except UserError as error:
        if debug:
            raise
        click.echo(f"lorabot: error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("lorabot: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except Exception as error:  # the last resort: still one line, with a way to see more
        if debug:
            raise
        click.echo(
            f"lorabot: internal error: {type(error).__name__}: {error} "
            "(set LORABOT_DEBUG=1 for a traceback)",
            err=True,
        )
        sys.exit(70)
