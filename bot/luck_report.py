"""A backtest's luck figures: bootstrap intervals, PSR, DSR against the trial ledger, gross return.

The numbers come from `bot.research.luck`; this module wires them to a run: the run's daily
returns from its recording, N and V from the trial ledger in the main store (`[store] url`, or
`--ledger URL`), the run recorded there under a hash of its data (the news and bars files and
the --from/--to window) and of its configuration, at the replay clock's time. The gross return
adds back what the costs took: the fees the portfolio paid and the slippage, which the paper
broker applies as `slippage_bps` to each fill's reference price.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bot.config import Settings

if TYPE_CHECKING:
    from bot.recording import Recording, TradeRow

#: Sections of the configuration that change where a run writes or what it logs, not what it
#: trades: two runs that differ only there are the same trial.
NOT_TRADING = ("store", "log")


def run_returns(recording: Recording, initial_cash: float) -> np.ndarray:
    """The run's daily returns, as bot/metrics.py forms them."""
    from bot.research.luck import daily_returns

    return daily_returns(recording.stamps, recording.equity, initial_cash)


def run_sharpe(recording: Recording, initial_cash: float) -> float:
    """The annualised daily Sharpe of a run (the backtest's `sharpe`)."""
    from bot.research.luck import annualised_sharpe

    return annualised_sharpe(run_returns(recording, initial_cash))


def trial_config(settings: Settings) -> dict[str, object]:
    """The configuration a trial is counted by: everything that can change a trade."""
    config = settings.to_toml_dict()
    return {key: value for key, value in config.items() if key not in NOT_TRADING}


def ledger_figures(
    recording: Recording,
    settings: Settings,
    *,
    ledger_url: str,
    data_files: Sequence[Path],
    start: datetime | None,
    end: datetime | None,
    recorded_at: datetime,
    run: str,
) -> dict[str, float]:
    """Record the run in the trial ledger and return its luck figures (metrics.json keys)."""
    from bot.research.ledger import TrialLedger, config_hash, data_hash
    from bot.research.luck import record_and_assess

    ledger = TrialLedger.open(ledger_url)
    try:
        return record_and_assess(
            ledger,
            returns=run_returns(recording, float(settings.engine.initial_cash)),
            data=data_hash(data_files, start, end),
            config=config_hash(trial_config(settings)),
            kind="backtest",
            recorded_at=recorded_at,
            run=run,
        )
    finally:
        ledger.engine.dispose()


def slippage_paid(trades: Sequence[TradeRow], slippage_bps: float) -> Decimal:
    """What slippage cost over the fills: each fill's price against its reference price
    (price / (1 + side * slippage)), to the broker's price rounding."""
    slip = Decimal(repr(slippage_bps)) / Decimal(10_000)
    total = Decimal(0)
    for trade in trades:
        if trade.reason == "funding":
            continue
        sign = 1 if trade.side == "buy" else -1
        reference = trade.price / (1 + sign * slip)
        total += trade.qty * abs(trade.price - reference)
    return total


def gross_return(
    final_equity: float, initial_cash: float, fees: float, slippage: float, funding: float = 0.0
) -> float:
    """The total return before fees, slippage and funding."""
    if not initial_cash:
        return 0.0
    return (final_equity + fees + slippage + funding) / initial_cash - 1.0


def training_span(settings: Settings) -> tuple[datetime, datetime] | None:
    """The span of the model's training data, from its manifest's `data.span` (`{"start":
    ISO-8601, "end": ISO-8601}`, written by `lorabot train` where the data has dates); None
    where the backend has no manifest or the manifest no span."""
    from bot.events import parse_time
    from bot.manifest import ManifestError, model_folder, read_manifest

    if settings.model.backend not in ("embedded", "vllm"):
        return None
    folder = model_folder(settings.model.path)
    try:
        span = read_manifest(folder).data.get("span")
    except ManifestError:
        return None
    if not isinstance(span, dict):
        return None
    try:
        return parse_time(str(span["start"])), parse_time(str(span["end"]))
    except (KeyError, ValueError):
        return None


def training_overlap(
    span: tuple[datetime, datetime] | None, first: datetime, last: datetime
) -> tuple[float, str]:
    """1.0 when the replay [first, last] overlaps the training span, with the note that says so
    (the model's accuracy is inflated there); 0.0 and why otherwise."""
    if span is None:
        return (
            0.0,
            "training_overlap: the model's training span is unknown (no span in its manifest)",
        )
    start, end = span
    if first <= end and start <= last:
        return 1.0, (
            f"TRAINING OVERLAP: the replay ({first.isoformat()} to {last.isoformat()}) overlaps "
            f"the model's training data ({start.isoformat()} to {end.isoformat()}): its accuracy "
            "is inflated there"
        )
    return 0.0, ""
