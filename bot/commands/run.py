"""`lorabot run`: the paper or live trading daemon."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import click

from bot.cli import config_option, settings_for
from bot.commands.paths import readable_file
from bot.config import Settings
from bot.errors import UserError
from bot.log import setup_logging


def _finite_speed(value: float) -> float:
    """click's float type lets `nan` and `inf` through, and `nan <= 0` is false."""
    if not math.isfinite(value) or value <= 0:
        raise click.BadParameter(f"must be a finite number above 0 (got {value})")
    return value


def _check_replay_files(
    settings: Settings, news: Path | None, bars: Path | None, skip_bad_rows: bool
) -> None:
    """Read the --replay-* files through before anything starts: a missing, unreadable or bad
    file is then one line, not an error after the store, the model and Bybit's instrument query
    (whose warnings, offline, came first). The daemon reads them again when it plays them.

    With `--skip-bad-rows` only the files themselves are checked here: the daemon's own reading
    reports each bad row (reading here too would report each one twice)."""
    from bot.assemble import bars_file, read_news_file
    from bot.symbols import SymbolTable

    if news is not None:
        readable_file(news, "--replay-news")
        if not skip_bad_rows:
            read_news_file(news, SymbolTable.from_settings(settings))
    if bars is not None:
        readable_file(bars, "--replay-bars")
        if not skip_bad_rows:
            for _ in bars_file(bars, settings.default_symbol):
                pass


@click.command()
@click.option(
    "--mode",
    type=click.Choice(["paper", "live"]),
    default=None,
    help="paper: simulated fills on live prices (default, from [engine] mode); "
    "live: real Bybit orders (keys from the environment).",
)
@click.option(
    "--confirm-mainnet",
    is_flag=True,
    help="Required, with [bybit] network = 'mainnet', to trade real money.",
)
@click.option(
    "--account",
    help="Account name in the store (default: 'paper', or 'live-<network>-<category>').",
)
@click.option(
    "--replay-news",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Play a news file out in real time instead of polling feeds (paper mode, or live "
    "mode against the simulator, testnet or demo; never with real money).",
)
@click.option(
    "--replay-bars",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Play a bars file out in real time instead of Bybit's stream (paper mode).",
)
@click.option(
    "--speed",
    type=float,
    callback=lambda _ctx, _param, value: _finite_speed(value),
    default=1.0,
    show_default=True,
    help="Time compression of --replay-* files.",
)
@click.option(
    "--keep-times",
    is_flag=True,
    help="Keep the --replay-* files' own timestamps instead of starting them now.",
)
@click.option(
    "--no-news",
    is_flag=True,
    help="Run with no news source on purpose (no enabled [[news.feeds]] and no --replay-news): "
    "the daemon then trades on nothing but its stops and re-votes.",
)
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Skip the --replay-* files' bad rows, each reported with its reason as a warning "
    "(default: a file with a bad row is refused, its rows named).",
)
@click.option(
    "--sd-notify",
    is_flag=True,
    help="Under systemd (Type=notify): send READY=1 once trading, STATUS= lines, and WATCHDOG=1 "
    "while the main loop makes progress (see deploy/lorabot.service).",
)
@config_option
@click.pass_context
def run(
    ctx: click.Context,
    mode: str | None,
    confirm_mainnet: bool,
    account: str | None,
    replay_news: Path | None,
    replay_bars: Path | None,
    speed: float,
    keep_times: bool,
    no_news: bool,
    skip_bad_rows: bool,
    sd_notify: bool,
    config_path: Path | None,
) -> None:
    """Run the trading daemon until SIGINT/SIGTERM.

    It polls the configured news feeds, streams prices from Bybit, trades on the model's
    signals through the paper broker (or Bybit in live mode), persists everything in the store,
    and resumes positions, cash and open orders from it when started again. Logs are JSON lines
    on stderr (readable lines in a terminal).
    """
    settings = settings_for(ctx, config_path)
    setup_logging(settings.log.level, settings.log.format, file=settings.log.file)
    from bot.daemon import DaemonOptions, ReplayFiles, run_daemon

    chosen = mode or settings.engine.mode
    replay = None
    if replay_news or replay_bars:
        if chosen == "live" and replay_bars:
            raise UserError(
                "--replay-bars is for paper mode only: live mode trades on the venue's prices "
                "(--replay-news works in live mode against the simulator, testnet or demo)"
            )
        _check_replay_files(settings, replay_news, replay_bars, skip_bad_rows)
        replay = ReplayFiles(
            replay_news, replay_bars, speed, rebase=not keep_times, skip_bad_rows=skip_bad_rows
        )
    elif skip_bad_rows:
        raise UserError("--skip-bad-rows is for --replay-news and --replay-bars files")
    feeds = [feed for feed in settings.news.feeds if feed.enabled]
    if not feeds and replay_news is None and not no_news:
        raise UserError(
            "no news source: no [[news.feeds]] is enabled and no --replay-news was given, so "
            "the daemon would never trade. Enable a feed in the config, pass --replay-news FILE, "
            "or --no-news if that is intended"
        )
    if settings.api.enabled:  # before anything starts: a public console needs its token
        import os

        from bot.console.auth import TOKEN_ENV, check_bind

        check_bind(settings.api.listen, os.environ.get(TOKEN_ENV))
    options = DaemonOptions(
        mode=chosen,
        confirm_mainnet=confirm_mainnet,
        account=account,
        replay=replay,
        live_feeds=replay_news is None,
        sd_notify=sd_notify,
    )
    asyncio.run(run_daemon(settings, options))
