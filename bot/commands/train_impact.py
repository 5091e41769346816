"""The `--task impact` options of `lorabot train`, and the hand-over to `training.impact.cli.run`.

Kept here so that the command shell (`bot/commands/train.py`) gains two lines, not a page. Only
click is imported at module level: `lorabot --help` stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bot.config import Settings, TrainingConfig
from bot.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def impact_options(function: F) -> F:
    options = [
        click.option(
            "--task",
            type=click.Choice(["sentiment", "impact"]),
            default="sentiment",
            show_default=True,
            help="sentiment: labelled texts (--data); impact: what the news did to the price "
            "(--news, --bars): text-only, numbers-only and fusion models in one run.",
        ),
        click.option("--news", "impact_news", help="impact: a news file (JSONL or CSV)."),
        click.option(
            "--bars",
            "impact_bars",
            multiple=True,
            help="impact: [SYMBOL=]FILE of bars (repeat per symbol).",
        ),
        click.option("--symbol", "impact_symbol", help="impact: label against (default: first)."),
        click.option("--horizon", default="4h", show_default=True, help="impact: label horizon."),
        click.option(
            "--features",
            "impact_features",
            default="returns,volatility,volume",
            show_default=True,
            help="impact: feature groups.",
        ),
        click.option(
            "--threshold",
            type=float,
            default=0.5,
            show_default=True,
            help="impact: up/down beyond this many past standard deviations of horizon returns.",
        ),
        click.option("--split-date", help="impact: train before DATE, test after it + embargo."),
        click.option("--walk-forward", help="impact: retrain every step (1M) after the split."),
        click.option("--embargo", help="impact: gap after each split (default: the horizon)."),
        click.option(
            "--impact-models",
            default="text,numbers,fusion",
            show_default=True,
            help="impact: which models to train (fusion needs the text model's encoder).",
        ),
        click.option(
            "--skip-bad-rows", is_flag=True, help="impact: leave out bad rows, one line each."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def run_impact(
    settings: Settings,
    cfg: TrainingConfig,
    params: dict[str, Any],
    command: str,
    echo: Callable[[str], None],
) -> None:
    """`lorabot train --task impact ...`: the report path and the table on stdout."""
    from bot.commands.backtest import _time
    from bot.research.run_analysis import parse_bars_options
    from bot.symbols import SymbolTable
    from training.impact.cli import ImpactRequest, run
    from training.impact.report import REPORT_JSON, render_markdown

    if not params.get("impact_news"):
        raise UserError("--task impact needs --news FILE (and --bars [SYMBOL=]FILE)")
    symbols = SymbolTable.from_settings(settings)
    bars = parse_bars_options(params["impact_bars"], symbols, settings.default_symbol)
    out: Path = params["out"]
    request = ImpactRequest(
        news=Path(params["impact_news"]),
        bars=bars,
        out=out,
        symbol=params["impact_symbol"],
        horizon=params["horizon"],
        features=_csv(params["impact_features"]),
        threshold=params["threshold"],
        split_date=_time(params["split_date"], "--split-date"),
        walk_forward=params["walk_forward"],
        embargo=params["embargo"],
        models=_csv(params["impact_models"]),
        skip_bad_rows=params["skip_bad_rows"],
        progress=params["progress"],
        command=command,
    )
    document = run(settings, cfg, request, echo=echo)
    click.echo(render_markdown(document))
    click.echo(f"wrote {out / REPORT_JSON}, impact_report.md and the model folders")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())
