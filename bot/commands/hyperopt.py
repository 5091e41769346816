"""`lorabot hyperopt`: walk-forward tuning of the configured strategy on Optuna."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.cli import config_option, settings_for
from bot.clock import LiveClock
from bot.commands.backtest import _time
from bot.log import setup_logging


@click.command()
@click.option(
    "--news",
    "news_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="News file (as `lorabot backtest --news`).",
)
@click.option(
    "--bars",
    "bars_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bars file (as `lorabot backtest --bars`).",
)
@click.option("--trials", type=int, default=100, show_default=True, help="Trials per fold.")
@click.option("--folds", type=int, default=4, show_default=True, help="Walk-forward folds.")
@click.option(
    "--objective",
    type=click.Choice(["sharpe", "sortino", "calmar", "return"]),
    default="sharpe",
    show_default=True,
    help="What a trial maximises.",
)
@click.option(
    "--jobs",
    type=int,
    default=1,
    show_default=True,
    help="Worker processes on this machine, all on the same study.",
)
@click.option(
    "--storage",
    metavar="URL",
    help="Study storage shared across machines (e.g. postgresql://user@host/db); "
    "default: a journal file in --out.",
)
@click.option(
    "--study",
    default="hyperopt",
    show_default=True,
    help="Study name (workers with the same name and storage share it).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: the data directory's hyperopt/STUDY).",
)
@click.option(
    "--space",
    multiple=True,
    metavar="NAME=LOW:HIGH",
    help="Narrow a parameter's range (NAME=a,b for choices); repeatable.",
)
@click.option(
    "--walk",
    type=click.Choice(["anchored", "rolling"]),
    default="anchored",
    show_default=True,
    help="In-sample span: from the start (anchored) or the last segment.",
)
@click.option("--symbol", help="Which symbol the bars are (default: the first in [symbols]).")
@click.option("--from", "start", metavar="TIME", help="Use only data from TIME.")
@click.option("--to", "end", metavar="TIME", help="... up to TIME.")
@click.option(
    "--ledger",
    "ledger_url",
    metavar="URL",
    help="Trial ledger database (default: the main store's [store] url).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampler seed.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
@config_option
@click.pass_context
def hyperopt(
    ctx: click.Context,
    news_path: Path,
    bars_path: Path,
    trials: int,
    folds: int,
    objective: str,
    jobs: int,
    storage: str | None,
    study: str,
    out_dir: Path | None,
    space: tuple[str, ...],
    walk: str,
    symbol: str | None,
    start: str | None,
    end: str | None,
    ledger_url: str | None,
    seed: int,
    progress: bool | None,
    config_path: Path | None,
) -> None:
    """Tune the strategy's declared parameters, walk-forward, and score them out of sample.

    Each fold tunes on its in-sample span and replays its best parameters on the next, unseen
    span; the stitched out-of-sample result is the headline. Writes hyperopt.json,
    hyperopt.md, charts and best.toml (a config `lorabot backtest --config` runs) into --out.
    """
    settings = settings_for(ctx, config_path)
    # Trials are many replays: their per-run warnings (a daily loss limit reached...) would
    # bury the result, so only errors are logged unless the config asks for debug.
    level = "debug" if settings.log.level == "debug" else "error"
    setup_logging(level, settings.log.format)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from bot.optimize.run import HyperoptOptions, run_hyperopt

    options = HyperoptOptions(
        news_path=news_path,
        bars_path=bars_path,
        out_dir=out_dir or settings.data_dir / "hyperopt" / study,
        trials=trials,
        folds=folds,
        objective=objective,
        jobs=jobs,
        storage=storage,
        study=study,
        space=space,
        walk=walk,
        symbol=symbol,
        start=_time(start, "--from"),
        end=_time(end, "--to"),
        ledger_url=ledger_url,
        seed=seed,
        progress=progress,
    )
    summary = run_hyperopt(settings, options, LiveClock())
    click.echo(
        f"{summary['n_trials']} trials ({summary['n_pruned']} pruned) over "
        f"{len(summary['folds'])} folds; out-of-sample {objective} {summary['oos_value']:.3f}, "
        f"in-sample {summary['is_value']:.3f}"
    )
    click.echo(f"best parameters: {json.dumps(summary['best_params'])}")
    click.echo(f"report: {options.out_dir}")
