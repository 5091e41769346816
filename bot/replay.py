"""The one replay driver: parsed news and bars through the very engine the daemon runs.

`lorabot backtest`, the tests, `lorabot analyze` and every hyperopt trial replay through `replay`
(which builds the engine graph) or `play` (the loop itself, on parts already built). The only
things that differ from paper mode are the `ReplayClock` (time moves to each event's release
time, firing the engine's timers on the way) and where events come from. Dispatch is synchronous
through the same bus and objects, in the same order, so the same inputs give byte-identical
trades.

The model is asked once per distinct text before the loop (`prefetch`, batched, cached); the
signal service then reads its answers from the signal source in event order. That source is the
run's `SignalCache`, or answers given directly (`given_signals`, e.g. permuted ones for a null
model). The store is the run's file, or an in-memory `sqlite://` one for trials.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from bot.assemble import Parts, paper_broker, replay_parts, wire_engine
from bot.bus import Bus
from bot.clock import ReplayClock
from bot.config import Settings
from bot.engine import Engine
from bot.events import Bar, Decision, NewsItem
from bot.funding import FundingCharger, FundingSchedule
from bot.protocols import Prediction, SentimentModel
from bot.recording import EPOCH, MICROSECOND, Recording, trade_recorder
from bot.signals import SignalCache, normalise
from bot.store import Store
from bot.streams import merge, window
from bot.symbols import SymbolTable

PROGRESS_EVERY = 4096


class Progress:
    """A progress bar on stderr (tqdm); silent when stderr is not a terminal."""

    def __init__(self, total: int | None, description: str, enabled: bool | None = None) -> None:
        from tqdm import tqdm

        disable = None if enabled is None else not enabled  # None: only on a terminal
        self._bar = tqdm(
            total=total,
            desc=description,
            unit=" ev",
            unit_scale=True,
            disable=disable,
            leave=False,
            mininterval=0.25,
        )

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


@dataclass
class Replayed:
    parts: Parts
    recording: Recording
    replay_s: float  # the event loop alone
    replay_cpu_s: float = 0.0  # the same, in CPU seconds of this process (a shared machine)


def given_signals(model_id: str, answers: Mapping[str, Prediction]) -> SignalCache:
    """A memory-only signal source holding these answers (text -> prediction) for `model_id`."""
    cache = SignalCache()
    cache.put_many(model_id, [(normalise(text), answer) for text, answer in answers.items()])
    return cache


def prefetch(parts: Parts, texts: Sequence[str], progress: bool | None = False) -> None:
    """Ask the model about every text the signal source does not answer yet (raises
    `ModelUnavailable` when it cannot)."""
    if not texts:
        return
    meter = Progress(len(texts), "model", progress)
    try:
        asyncio.run(parts.signals.prefetch(list(texts), meter.update))
    finally:
        meter.close()


def warm_market(
    parts: Parts, events: Iterator[NewsItem | Bar], start: datetime | None
) -> Iterator[NewsItem | Bar]:
    """A market-aware model reads the bars before each item, those before `--from` too: they go
    to the signal service alone (nothing trades on them), the rest pass through unchanged. With
    no `--from` or no market-aware model, `events` itself (no layer for every event)."""
    if start is None or not parts.signals.reads_bars:
        return events
    return _warming(parts, events, start)


def _warming(
    parts: Parts, events: Iterable[NewsItem | Bar], start: datetime
) -> Iterator[NewsItem | Bar]:
    for event in events:
        if type(event) is Bar and event.ts < start:
            parts.signals.on_bar(event)
        yield event


#: Young collections between full ones during a replay (CPython's default is 10).
FULL_COLLECTION_EVERY = 100_000


@contextmanager
def young_collections_only() -> Iterator[None]:
    """The replay's loop without full (generation 2) garbage collections.

    What a replay keeps grows all the time (decision records, fills, orders), and every full
    collection walks all of it again: on the throughput benchmark's million events six of them
    took 0.68 s of a 20 s loop, the only part of it that grows faster than the events. The young
    generations still collect every cycle that dies young; one that dies old waits for the first
    full collection after the replay (13 MB more peak memory on that run)."""
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, max(full, FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(young, middle, full)


def play(
    parts: Parts | Engine,
    events: Iterable[NewsItem | Bar],
    *,
    symbol: str = "",
    recording: Recording | None = None,
    on_first: Callable[[datetime], None] | None = None,
    meter: Progress | None = None,
) -> Recording:
    """Replay `events` (in release order) through `parts` (or an engine of `trial_engine`);
    records each bar of `symbol` (the first traded one by default). The clock starts at the first
    event, which starts the engine's timers (after `on_first`, which opens the run in the
    store)."""
    engine = parts if isinstance(parts, Engine) else parts.engine
    clock, bus = engine.clock, engine.bus
    assert isinstance(clock, ReplayClock), "a replay runs on a ReplayClock"
    symbol = symbol or next(iter(engine.traded), "")
    recording = recording if recording is not None else Recording()
    if id(engine) not in recording.listening:  # a second `play` on the same parts continues
        engine.fill_listeners.append(trade_recorder(recording, engine))
        bus.subscribe(Decision, recording.decisions.append)
        recording.listening.add(id(engine))
    portfolio = engine.portfolio
    advance, publish = clock.advance_to, bus.publish
    stamps, closes = recording.stamps.append, recording.closes.append
    exposed, equity = recording.exposed.append, recording.equity.append
    epoch, microsecond = EPOCH, MICROSECOND  # to_micros, inlined: it runs once a bar
    # A bar's stamp is the last one plus the gap when the gap is the usual one: a subtraction
    # instead of a conversion (the slowest line of the loop), exact all the same (integers).
    previous, micros, step, step_us = epoch, 0, None, 0
    fills_seen = -1
    cash = float(portfolio.cash)
    holding = False
    pending = 0
    started = False
    with young_collections_only():
        for event in events:
            advance(event.ts)
            if not started:
                if on_first is not None:
                    on_first(event.ts)
                engine.start_timers()
                started = True
            publish(event)
            if type(event) is Bar:
                if event.symbol == symbol:
                    ts = event.ts
                    gap = ts - previous
                    if gap == step:
                        micros += step_us
                    else:
                        micros = (ts - epoch) // microsecond
                        step, step_us = gap, gap // microsecond
                    previous = ts
                    stamps(micros)
                    closes(float(event.close))
                    if portfolio.n_fills != fills_seen:  # positions change only by fills
                        fills_seen = portfolio.n_fills
                        cash = float(portfolio.cash)
                        # any open position, of any traded symbol: a portfolio's equity is marked
                        holding = any(p.qty for p in portfolio.positions.values())
                    if holding:
                        exposed(1)
                        equity(float(portfolio.equity))
                    else:
                        exposed(0)
                        equity(cash)
            else:
                recording.n_news += 1
            if meter is not None:
                pending += 1
                if pending >= PROGRESS_EVERY:
                    meter.update(pending)
                    pending = 0
    recording.n_bars = len(recording.stamps)
    return recording


def replay(
    settings: Settings,
    *,
    news: Sequence[NewsItem],
    bars: Iterable[Bar],
    symbol: str,
    model: SentimentModel,
    signals: SignalCache,
    store: Store,
    run_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: bool | None = False,
    expected_events: int | None = None,
    symbols: SymbolTable | None = None,
    record_news: bool = True,
    on_parts: Callable[[Parts], None] | None = None,
    traded: Sequence[str] | None = None,
) -> Replayed:
    """One whole replay of `symbol` on parsed events: build the engine graph on a replay clock
    and the paper broker, ask the model what the signal source does not know, play the events
    released within [start, end], and close the run in the store (a final snapshot).
    `on_parts` sees the graph before the first event (e.g. to subscribe funding to the bars).
    `traded`: every symbol the account trades (a portfolio; `bars` then holds all of theirs,
    merged in release order); `symbol`, the one whose bars stamp the recording, by default the
    only one."""
    symbols = symbols or SymbolTable.from_settings(settings)
    parts = replay_parts(
        settings,
        store=store,
        symbols=symbols,
        traded=list(traded) if traded else [symbol],
        id_prefix=f"bt{run_id[:8]}",
        model=model,
        cache=signals,
    )
    if on_parts is not None:
        on_parts(parts)
    prefetch(parts, [i.text for i in news if start is None or i.received >= start], progress)

    def open_run(ts: datetime) -> None:
        store.start_run(run_id, "backtest", ts, settings.to_toml_dict())
        store.open_account(store.account, "backtest", settings.engine.initial_cash, ts)
        if record_news:  # the file is this run's news source: it writes what it publishes
            for item in news:
                store.record_news(item)

    total = None if expected_events is None else expected_events + len(news)
    meter = Progress(total, f"replay {symbol}", progress)
    began, began_cpu = time.perf_counter(), time.process_time()
    try:
        recording = play(
            parts,
            window(warm_market(parts, merge(news, bars), start), start, end),
            symbol=symbol,
            on_first=open_run,
            meter=meter,
        )
    finally:
        meter.close()
    replay_s, replay_cpu_s = time.perf_counter() - began, time.process_time() - began_cpu
    if recording.n_bars:
        now = parts.clock.now()
        parts.engine.snapshot(now)
        store.end_run(now)
    return Replayed(parts, recording, replay_s, replay_cpu_s)


# -- replays that keep nothing: the luck replays and hyperopt trials ---------------------------


def trial_engine(
    settings: Settings,
    *,
    symbols: SymbolTable,
    traded: Sequence[str],
    model: SentimentModel,
    signals: SignalCache,
    id_prefix: str = "trial",
) -> Engine:
    """The graph of `replay_parts` for a replay that keeps nothing: the same engine, strategy,
    risk gate and paper broker on a `ReplayClock` and a strict bus, but no store, no journal and
    no decision records, since only its equity and fills are of use."""
    clock = ReplayClock()
    return wire_engine(
        settings, clock, Bus(strict=True), None, symbols, model,
        paper_broker(settings, symbols, clock), traded, settings.engine.initial_cash, id_prefix,
        signals, record_decisions=False,
    )  # fmt: skip


@dataclass
class TrialResult:
    """What a replay in memory gives: its per-bar recording (equity, fills) and its Sharpe, the
    backtest's `sharpe` (annualised, from the daily closes of the equity)."""

    recording: Recording
    sharpe: float

    @property
    def final_equity(self) -> float:
        return self.recording.equity[-1] if self.recording.n_bars else 0.0


def replay_in_memory(
    settings: Settings,
    *,
    bars: Iterable[Bar],
    news: Sequence[NewsItem],
    signals: SignalCache,
    model: SentimentModel,
    symbol: str,
    symbols: SymbolTable | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    funding: FundingSchedule | None = None,
    traded: Sequence[str] | None = None,
    funded: Sequence[str] | None = None,
    on_engine: Callable[[Engine], None] | None = None,
) -> TrialResult:
    """One replay of `symbol` on events parsed once and held in memory (`bars` a list; a fresh
    stream of a file's bars works too), keeping nothing.

    For the runs that only need a Sharpe: the lag test, the null models' 2N replays, each trial
    of a hyperopt (a different `[strategy]` per call: pass its `Settings`). The events go through
    the same driver (`play`) and the same engine graph as `replay`, so the equity is the one
    `lorabot backtest` would record with these settings; but no store is opened, no decision is
    recorded and nothing is written. `signals` must already answer every text of `news` for
    `model` (a backtest's cache after its run, `given_signals`, or `prefetch` once before the
    trials): an unanswered item stops the replay with an error naming it. `funding` charges the
    perpetual's funding as a backtest with `--funding` does, on each of `funded` (default:
    `symbol`). `traded`: a portfolio's symbols, whose bars `bars` merges (default: `symbol`).
    `on_engine` sees the engine before the first event (a hyperopt's pruning checkpoints).
    """
    symbols = symbols or SymbolTable.from_settings(settings)
    engine = trial_engine(
        settings, symbols=symbols, traded=list(traded or [symbol]), model=model, signals=signals
    )
    if funding is not None and funding.active:
        for each in [symbol] if funded is None else funded:
            engine.bus.subscribe(Bar, FundingCharger(engine.portfolio, each, funding).on_bar)
    if on_engine is not None:
        on_engine(engine)
    recording = play(engine, window(merge(news, bars), start, end), symbol=symbol)
    from bot.luck_report import run_sharpe

    return TrialResult(recording, run_sharpe(recording, float(settings.engine.initial_cash)))
