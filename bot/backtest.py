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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from bot import assemble, funding
from bot.assemble import Parts, build_model
from bot.config import Settings
from bot.errors import InputError, UserError
from bot.events import Bar, NewsItem, iso
from bot.funding import FundingSchedule
from bot.log import get_logger
from bot.luck_replays import BarKeeper, ReplayInputs
from bot.luck_wiring import LuckOptions, add_luck_figures
from bot.portfolio_figures import SymbolPrices, basket_equity, merge_bars, symbol_figures
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
    bars_path: Path | None = None,
    news_path: Path | None,
    symbol: str | None = None,
    bars: Mapping[str, Path] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    out_dir: Path,
    progress: bool | None = None,
    run_id: str | None = None,
    skip_bad_rows: bool = False,
    luck: LuckOptions | None = None,
    funding_path: Path | None = None,
) -> BacktestResult:
    """One backtest: `bars_path` of `symbol` (default: the first in [symbols]), or a portfolio,
    `bars` (symbol -> file, the first symbol first) traded by one engine and one account."""
    began = time.perf_counter()
    symbols = SymbolTable.from_settings(settings)
    files = bar_files(settings, symbols, bars_path, symbol, bars)
    symbol = next(iter(files))
    news = (
        assemble.read_news_file(news_path, symbols, skip_bad_rows=skip_bad_rows)
        if news_path
        else []
    )
    if start is not None and end is not None and end <= start:
        raise UserError(f"--to {end.isoformat()} is not after --from {start.isoformat()}")

    def bar_stream() -> Iterator[Bar]:
        streams = {
            s: assemble.bars_file(p, s, skip_bad_rows=skip_bad_rows) for s, p in files.items()
        }
        return merge_bars(streams, symbol)

    options = luck or LuckOptions()
    keeper = BarKeeper(start, end)  # for the lag and null replays, which only a news run has
    bars_read: Iterable[Bar] = bar_stream()
    expected_bars = sum(assemble.estimate_bars(p) for p in files.values())
    # A whole file far over the keeper's limit would be given up on: it is read again for each
    # extra replay instead, and the run's own replay keeps no watching layer for every bar.
    keepable = start is not None or end is not None or expected_bars <= 2 * keeper.limit
    if news and (options.lag or options.null_trials) and keepable:
        bars_read = keeper.watch(bars_read)
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
    funded = [s for s in files if symbols.instruments[s].can_short]
    schedule = funding_schedule(settings, funding_path, bool(funded))
    funding_hook, chargers = funding.attach_each(schedule, funded)
    prices = SymbolPrices()

    def on_parts(parts: Parts) -> None:
        if len(files) > 1:  # one symbol: the recording's own bars are its prices (below)
            parts.bus.subscribe(Bar, prices.on_bar)
        if funding_hook is not None:
            funding_hook(parts)

    model = build_model(settings)
    try:
        replayed = replay(
            settings,
            news=news,
            bars=bars_read,
            symbol=symbol,
            model=model,
            signals=assemble.signal_cache(settings),
            store=store,
            run_id=run_id,
            start=start,
            end=end,
            progress=progress,
            expected_events=expected_bars,
            symbols=symbols,
            on_parts=on_parts,
            traded=list(files),
        )
    except ModelUnavailable as error:
        raise UserError(f"the model could not classify the news: {error}") from None
    if not replayed.recording.n_bars:
        raise InputError(f"{files[symbol]}: no bars between --from and --to")
    if len(files) == 1:
        prices.stamps[symbol] = replayed.recording.stamps
        prices.closes[symbol] = replayed.recording.closes
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
        bars=keeper.replayable(bar_stream),
        symbol=symbol,
        model=model,
        signals=parts.signals.cache,
        symbols=symbols,
        start=start,
        end=end,
        funding=schedule,
        traded=list(files),
        funded=funded,
    )
    paid = sum((c.paid for c in chargers), Decimal(0))
    metrics["funding_paid"] = float(paid)
    missing = sum(c.missing for c in chargers)
    if missing:
        notes = metrics["notes"]
        assert isinstance(notes, list)
        notes.append(
            f"--funding {funding_path}: no rate for {missing} settlement times "
            "with a position open (nothing charged then)"
        )
    add_luck_figures(
        metrics,
        replayed.recording,
        inputs,
        options,
        files=[*files.values(), *([news_path] if news_path else [])],
        recorded_at=parts.clock.now(),
        run=run_id,
        fees=float(parts.engine.portfolio.fees),
        funding_paid=float(paid),
    )
    for charger in chargers:  # funding rows join the fills in time order (after the metrics)
        replayed.recording.trades = sorted(
            [*replayed.recording.trades, *charger.rows], key=lambda row: row.ts
        )
    add_portfolio_figures(metrics, replayed.recording, parts, prices, list(files))
    result = BacktestResult(run_id, symbol, out_dir, settings, replayed.recording, metrics, parts)
    result.symbols = list(files)
    result.prices = prices
    result.titles = {item.id: item.title for item in news}
    result.elapsed_s = time.perf_counter() - began
    result.replay_s = replayed.replay_s
    result.replay_cpu_s = replayed.replay_cpu_s
    asyncio.run(model.close())
    asyncio.run(parts.signals.close_extra_models())
    store.close()
    parts.signals.cache.close()
    return result


def bar_files(
    settings: Settings,
    symbols: SymbolTable,
    bars_path: Path | None,
    symbol: str | None,
    bars: Mapping[str, Path] | None,
) -> dict[str, Path]:
    """symbol -> bars file for the run, each symbol known to [symbols] (the error names it)."""
    if bars:
        if bars_path is not None or symbol is not None:
            raise UserError("give the bars once: SYMBOL=FILE pairs, or one file and --symbol")
        chosen = dict(bars)
    elif bars_path is not None:
        chosen = {symbol or settings.default_symbol: bars_path}
    else:
        raise UserError("--bars FILE is required (or --sample for the bundled data)")
    for name in chosen:
        if name not in symbols.instruments:
            raise UserError(
                f"--symbol {name}: not in [symbols] (known: {', '.join(symbols.symbols)})"
            )
    return chosen


def add_portfolio_figures(
    metrics: dict[str, object],
    recording: Recording,
    parts: Parts,
    prices: SymbolPrices,
    traded: Sequence[str],
) -> None:
    """Each symbol's figures under `symbols`, and buy-and-hold as the equal-weight basket of
    the run's symbols (one symbol: that symbol's own)."""
    initial = parts.settings.engine.initial_cash
    metrics["symbols"] = symbol_figures(
        recording.trades, parts.engine.portfolio, prices, traded, initial
    )
    if len(traded) > 1:
        basket = basket_equity(prices, traded, recording.stamps[-1:], float(initial))
        metrics["buy_and_hold_return"] = basket[0] / float(initial) - 1.0 if initial else 0.0


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
