"""Every backtest's luck figures, added to its metrics: what `lorabot backtest` runs after the
replay (the ledger, the gross return, the lag test and, on request, the null models).

Kept apart from `bot.backtest` so the run itself stays a replay and a measurement, and so a
hyperopt trial can reuse the same steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.log import get_logger
from bot.luck_replays import ReplayInputs, bar_interval, lag_sharpe, lag_warning, null_figures
from bot.luck_report import (
    gross_return,
    ledger_figures,
    run_sharpe,
    slippage_paid,
    training_overlap,
    training_span,
)
from bot.recording import Recording

log = get_logger("bot.luck")


@dataclass(frozen=True)
class LuckOptions:
    """What the user asked of the luck figures (`--ledger`, `--no-lag`, `--lag M`, `--null N`)."""

    ledger_url: str | None = None  # None: the main store's `[store] url`
    lag: bool = True
    lag_minutes: float | None = None
    null_trials: int = 0
    seed: int = 0
    null_workers: int = 0  # processes for the null replays; 0: one per usable CPU


def add_luck_figures(
    metrics: dict[str, object],
    recording: Recording,
    inputs: ReplayInputs,
    options: LuckOptions,
    *,
    files: Sequence[Path],
    recorded_at: datetime,
    run: str,
    fees: float,
    funding_paid: float = 0.0,
) -> None:
    """Add the luck figures to `metrics` (numbers; any warning also goes to `notes`)."""
    settings = inputs.settings
    notes = metrics["notes"]
    assert isinstance(notes, list)
    initial = float(settings.engine.initial_cash)
    metrics.update(
        ledger_figures(
            recording,
            settings,
            ledger_url=options.ledger_url or settings.store_url,
            data_files=files,
            start=inputs.start,
            end=inputs.end,
            recorded_at=recorded_at,
            run=run,
        )
    )
    slippage = float(slippage_paid(recording.trades, settings.paper.slippage_bps))
    final = recording.equity[-1] if recording.n_bars else initial
    metrics["slippage_paid"] = slippage
    metrics["gross_return"] = gross_return(final, initial, fees, slippage, funding_paid)
    if recording.n_bars:
        overlap, note = training_overlap(
            training_span(settings), recording.time_at(0), recording.time_at(recording.n_bars - 1)
        )
        metrics["training_overlap"] = overlap
        if note:
            notes.append(note)
    sharpe = run_sharpe(recording, initial)
    if options.lag and not inputs.news:
        # nothing to delay: the lagged run is this run (and one replay of the bars cheaper)
        metrics["lag_sharpe"] = sharpe
        if options.lag_minutes is not None:
            metrics["lag_minutes"] = float(options.lag_minutes)
            metrics["lag_minutes_sharpe"] = sharpe
        notes.append("lag test: no news, so a delay changes nothing (lag_sharpe = sharpe)")
    elif options.lag:
        delay = bar_interval(recording)
        metrics["lag_sharpe"] = lag_sharpe(inputs, delay)
        _warn(notes, lag_warning(sharpe, float(metrics["lag_sharpe"]), delay))  # type: ignore[arg-type]
        if options.lag_minutes is not None:
            minutes = timedelta(minutes=options.lag_minutes)
            metrics["lag_minutes"] = float(options.lag_minutes)
            metrics["lag_minutes_sharpe"] = lag_sharpe(inputs, minutes)
            _warn(notes, lag_warning(sharpe, float(metrics["lag_minutes_sharpe"]), minutes))  # type: ignore[arg-type]
    else:
        notes.append("lag test skipped (--no-lag)")
    if options.null_trials:
        metrics.update(
            null_figures(inputs, sharpe, options.null_trials, options.seed, options.null_workers)
        )


def _warn(notes: list[object], warning: str | None) -> None:
    if warning:
        log.warning(warning)
        notes.append(warning)
