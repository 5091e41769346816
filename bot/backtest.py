"""`lorabot backtest`'s run: read the files, replay them once (`bot.replay.replay`), measure.

The replay itself is the one driver every replay shares; this module adds what a run folder
needs around it: the run's own store file and signal cache, the files read through
`bot.assemble` (only it names adapters), the metrics, and the clean lines for inputs that
cannot give a backtest (an unknown symbol, an empty window).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from bot import assemble, funding
from bot.assemble import build_model
from bot.config import Settings
from bot.errors import InputError, UserError
from bot.events import NewsItem, iso
from bot.funding import FundingSchedule
from bot.log import get_logger
from bot.luck_replays import BarKeeper, ReplayInputs
from bot.luck_wiring import LuckOptions, add_luck_figures
from bot.protocols import ModelUnavailable
from bot.recording import BacktestResult, Recording, TradeRow
from bot.replay import Progress, replay
from bot.store import Store
from bot.symbols import SymbolTable

log = get_logger("bot.backtest")

__all__ = ["BacktestResult", "LuckOptions", "Progress", "Recording", "TradeRow", "run_backtest"]


def run_backtest(
    settings: Settings,
    *,
    bars_path: Path,
    news_path: Path | None,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    out_dir: Path,
    progress: bool | None = None,
    run_id: str | None = None,
    skip_bad_rows: bool = False,
    luck: LuckOptions | None = None,
    funding_path: Path | None = None,
) -> BacktestResult:
    began = time.perf_counter()
    symbols = SymbolTable.from_settings(settings)
    symbol = symbol or settings.default_symbol
    if symbol not in symbols.instruments:
        raise UserError(
            f"--symbol {symbol}: not in [symbols] (known: {', '.join(symbols.symbols)})"
        )
    news = (
        assemble.read_news_file(news_path, symbols, skip_bad_rows=skip_bad_rows)
        if news_path
        else []
    )
    if start is not None and end is not None and end <= start:
        raise UserError(f"--to {end.isoformat()} is not after --from {start.isoformat()}")
    bars = assemble.bars_file(bars_path, symbol, skip_bad_rows=skip_bad_rows)
    options = luck or LuckOptions()
    keeper = BarKeeper(start, end)  # for the lag and null replays, which only a news run has
    if news and (options.lag or options.null_trials):
        bars = keeper.watch(bars)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out {out_dir}: cannot make the run folder ({error.strerror})") from None
    run_id = run_id or uuid.uuid4().hex[:12]

    store_path = out_dir / "store.sqlite"
    for stale in (store_path, out_dir / "store.sqlite-wal", out_dir / "store.sqlite-shm"):
        stale.unlink(missing_ok=True)
    store = Store(
        f"sqlite:///{store_path}",
        account=f"backtest-{run_id}",
        run_id=run_id,
        durable=False,
        commit_every=max(settings.store.commit_every, 4096),
    )
    schedule = funding_schedule(settings, funding_path, symbols.instruments[symbol].can_short)
    hook, chargers = funding.attach(schedule, symbol)
    model = build_model(settings)
    try:
        replayed = replay(
            settings,
            news=news,
            bars=bars,
            symbol=symbol,
            model=model,
            signals=assemble.signal_cache(settings),
            store=store,
            run_id=run_id,
            start=start,
            end=end,
            progress=progress,
            expected_events=assemble.estimate_bars(bars_path),
            symbols=symbols,
            on_parts=hook,
        )
    except ModelUnavailable as error:
        raise UserError(f"the model could not classify the news: {error}") from None
    if not replayed.recording.n_bars:
        raise InputError(f"{bars_path}: no bars between --from and --to")
    from bot.report import build_metrics

    parts = replayed.parts
    metrics = build_metrics(replayed.recording, parts.engine, settings)
    apart = news_outside_bars(news, replayed.recording)
    if apart:
        log.warning(apart)
        notes = metrics["notes"]
        assert isinstance(notes, list)
        notes.append(apart)
    inputs = ReplayInputs(
        settings=settings,
        news=news,
        bars=keeper.replayable(
            lambda: assemble.bars_file(bars_path, symbol, skip_bad_rows=skip_bad_rows)
        ),
        symbol=symbol,
        model=model,
        signals=parts.signals.cache,
        symbols=symbols,
        start=start,
        end=end,
        funding=schedule,
    )
    paid = sum((c.paid for c in chargers), Decimal(0))
    metrics["funding_paid"] = float(paid)
    if chargers and chargers[0].missing:
        notes = metrics["notes"]
        assert isinstance(notes, list)
        notes.append(
            f"--funding {funding_path}: no rate for {chargers[0].missing} settlement times "
            "with a position open (nothing charged then)"
        )
    files = [bars_path, *([news_path] if news_path else [])]
    add_luck_figures(
        metrics,
        replayed.recording,
        inputs,
        options,
        files=files,
        recorded_at=parts.clock.now(),
        run=run_id,
        fees=float(parts.engine.portfolio.fees),
        funding_paid=float(paid),
    )
    for charger in chargers:  # funding rows join the fills in time order (after the metrics)
        replayed.recording.trades = sorted(
            [*replayed.recording.trades, *charger.rows], key=lambda row: row.ts
        )
    result = BacktestResult(run_id, symbol, out_dir, settings, replayed.recording, metrics, parts)
    result.elapsed_s = time.perf_counter() - began
    result.replay_s = replayed.replay_s
    asyncio.run(model.close())
    store.close()
    parts.signals.cache.close()
    return result


def funding_schedule(
    settings: Settings, path: Path | None, perpetual: bool
) -> FundingSchedule | None:
    """What funding the run pays: the file's rates, else the flat `[paper] funding_rate`;
    none on spot."""
    if not perpetual:
        return None
    if path is not None:
        return FundingSchedule(table=assemble.funding_file(path))
    return FundingSchedule(flat=settings.paper.funding_rate)


def news_outside_bars(news: Sequence[NewsItem], recording: Recording) -> str | None:
    """Why a backtest's news cannot matter, when none of it falls within the bars' time span
    (a run of 0 trades that looks like a verdict on the strategy)."""
    if not news or not recording.n_bars:
        return None
    first = recording.time_at(0)
    if recording.n_bars >= 2:
        first -= recording.time_at(1) - first  # the first bar's open
    last = recording.time_at(recording.n_bars - 1)
    if any(first <= item.received <= last for item in news):
        return None
    return (
        f"no news item falls within the bars' time span ({iso(first)} to {iso(last)}; "
        f"news from {iso(news[0].received)} to {iso(news[-1].received)}): "
        "the news cannot have caused a trade"
    )
