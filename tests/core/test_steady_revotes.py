"""Skipped re-votes decide exactly as asked ones.

`SignalWindow.steady_until` promises that, while no signal arrives, `decide` keeps giving what
it gives now (a keep or a flat, the same winning class, the same side of the threshold); the
engine then skips the re-votes up to that time (bot/steady.py). A hypothesis test checks the
promise against the full vote at times inside the span; a backtest with the promise turned off
(a subclass whose `decide` is its own, which `VoteStrategy` never vouches for) must write the
same decisions, trades and equity, asking the strategy far less often with it on.
"""

from __future__ import annotations

import importlib
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import assemble
from bot.backtest import LuckOptions, run_backtest
from bot.commands.backtest import sample_paths
from bot.config import Settings
from bot.events import Label, Signal
from bot.replay import TrialResult, replay_in_memory
from bot.report import write_report
from bot.steady import SteadyRevotes
from bot.symbols import SymbolTable
from strategies.protocol import Evaluation, Intent, View
from strategies.vote import EMPTY, SignalWindow, VoteParams, decide, vote
from strategies.vote_strategy import VoteStrategy

T0 = datetime(2024, 3, 1, tzinfo=UTC)
MODULE = "tests.core.test_steady_revotes"
_US = timedelta(microseconds=1)


def signal(
    seconds: float,
    probs: tuple[float, float, float],
    symbol: str | None = "BTCUSDT",
    weight: float = 1.0,
    stale: bool = False,
    source: str = "a",
) -> Signal:
    at = T0 + timedelta(seconds=seconds)
    label = Label(max(range(3), key=lambda k: probs[k]))
    return Signal(at, symbol, label, probs[label], probs, "m", source, "n", None, at, weight, stale)


probabilities = st.tuples(st.floats(0, 1, allow_nan=False), st.floats(0, 1, allow_nan=False)).map(
    lambda ab: (min(ab), max(ab) - min(ab), 1 - max(ab))
)
signals = st.builds(
    signal,
    st.integers(0, 30_000),  # mostly inside the window of a `now` in the same range
    probabilities,
    st.sampled_from(["BTCUSDT", "ETHUSDT", None]),
    st.sampled_from([0.0, 0.5, 1.0, 1.7]),
    st.booleans(),
    st.sampled_from(["a", "b"]),
)
past_signals = st.builds(  # all before a `now` from 20,000 s on, most still in a 6h window
    signal,
    st.integers(0, 20_000),
    probabilities,
    st.sampled_from(["BTCUSDT", None]),
    st.sampled_from([0.5, 1.0, 1.7]),
    st.just(False),
)
parameters = st.builds(
    VoteParams,
    window=st.sampled_from([timedelta(hours=6), timedelta(seconds=5400.5), timedelta(hours=30)]),
    half_life=st.sampled_from([None, timedelta(hours=2), timedelta(seconds=333.3)]),
    threshold=st.sampled_from([0.3, 0.5, 0.6, 0.75, 0.9]),
    below_threshold=st.sampled_from(["hold", "flat"]),
    min_signals=st.sampled_from([1, 2, 3]),
    source_weights=st.sampled_from([{}, {"a": 2.0, "b": 0.0}]),
    trade_stale=st.booleans(),
    aggregation=st.sampled_from(["share", "evidence"]),
    prior_weight=st.sampled_from([0.0, 0.25, 3.0]),
)


#: The default vote (evidence, 6h window, 2h half-life) at various thresholds and priors: where
#: decay moves the shares most, so a promise that ignored it would be caught.
default_votes = st.builds(
    VoteParams,
    window=st.just(timedelta(hours=6)),
    half_life=st.just(timedelta(hours=2)),
    threshold=st.sampled_from([0.5, 0.6, 0.75]),
    prior_weight=st.sampled_from([0.25, 3.0]),
)


def outcome(composite: Any, params: VoteParams, can_short: bool) -> tuple[object, ...]:
    """What a re-vote's record key depends on: the decision, the class, and which side (of
    `min_signals` and of the threshold); how many members count beyond that is not (members
    age out inside a promised span)."""
    decision = decide(composite, params, can_short)
    enough = composite.n_signals >= params.min_signals
    counts = composite.label is not None and enough
    side = composite.confidence < params.threshold if counts else None
    return decision.direction, composite.label, enough, side


@settings(max_examples=600, deadline=None)
@given(
    st.lists(signals, max_size=30),
    st.one_of(parameters, default_votes),
    st.integers(0, 30_000),
    st.lists(st.floats(0, 1), min_size=1, max_size=6),
    st.booleans(),
)
def test_a_promised_span_decides_as_the_full_vote_at_every_time_in_it(
    arrived: list[Signal],
    params: VoteParams,
    start: int,
    fractions: list[float],
    can_short: bool,
) -> None:
    check_promise(arrived, params, start, fractions, can_short)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(past_signals, max_size=8),
    default_votes,
    st.integers(20_000, 30_000),
    st.lists(st.floats(0.9, 1), min_size=1, max_size=4),
    st.booleans(),
)
def test_a_span_cut_short_where_decay_turns_the_vote_decides_as_the_full_vote(
    arrived: list[Signal],
    params: VoteParams,
    start: int,
    fractions: list[float],
    can_short: bool,
) -> None:
    """Few signals under the default decay: the promise often ends where the shares cross (a
    winner overtaken by the prior, a threshold crossed), so times close to its end are tried."""
    check_promise(arrived, params, start, fractions, can_short)


def check_promise(
    arrived: list[Signal],
    params: VoteParams,
    start: int,
    fractions: list[float],
    can_short: bool,
) -> None:
    window, lazy = SignalWindow(params), SignalWindow(params)
    now = T0 + timedelta(seconds=start, microseconds=start % 11)
    for item in sorted(arrived, key=lambda s: s.received):
        window.add(item)
        lazy.add(item)
    composite = window.composite("BTCUSDT", now)
    until = window.steady_until("BTCUSDT", now, composite, can_short)
    promise = lazy.steady_promise("BTCUSDT", now, lazy.composite("BTCUSDT", now), can_short)
    if until is None:
        assert promise is None
        return
    assert promise is not None
    assert until > now
    expected = outcome(composite, params, can_short)
    assert expected[0] in (None, 0)
    span = until - now
    # inside the span, at its ends, and on both sides of every member's ageing out within it
    edges = [s.received + params.window + d for s in arrived for d in (-_US, 0 * _US, _US)]
    times = [until, now + _US] + [now + span * f for f in fractions]
    for at in sorted(times + [t for t in edges if now < t <= until]):  # `signals` prunes
        members = window.signals("BTCUSDT", at)
        assert outcome(vote(members, at, params), params, can_short) == expected
        covered = promise.covering(at)  # walked as the engine walks it: only as far as asked
        assert covered is not None and at <= covered <= until
    assert promise.furthest() == until


def keeping(params: VoteParams) -> SignalWindow:
    """Three neutral-leaning headlines an hour apart: the prior and decay keep it neutral."""
    window = SignalWindow(params)
    for hour in range(3):
        window.add(signal(hour * 3600, (0.2, 0.6, 0.2)))
    return window


EVIDENCE = VoteParams(timedelta(hours=6), timedelta(hours=2), threshold=0.6)


def test_a_neutral_composite_above_the_threshold_is_steady_until_its_last_member_leaves() -> None:
    window = keeping(EVIDENCE)
    now = T0 + timedelta(hours=2, minutes=5)
    composite = window.composite("BTCUSDT", now)
    assert composite.label is Label.NEUTRAL and composite.confidence >= 0.6
    until = window.steady_until("BTCUSDT", now, composite, can_short=True)
    # across the first two members' ageing out (at 6h and 7h), up to the last one's (8h)
    assert until == T0 + timedelta(hours=8) - _US


def test_the_promise_ends_at_the_age_out_that_turns_the_winner() -> None:
    """Two bullish headlines and a later bearish one: the bullish side wins (below the
    threshold, so the target is kept) until the first bullish leaves, and wins still after
    it, but the second's leaving hands the vote to the bearish one: the promise runs across
    the first age-out and stops at the second."""
    params = VoteParams(timedelta(hours=6), None, threshold=0.9, prior_weight=0.25)

    def window() -> SignalWindow:  # a fresh one for each look (a window prunes as time moves)
        made = SignalWindow(params)
        made.add(signal(0, (0.1, 0.1, 0.8)))
        made.add(signal(1800, (0.1, 0.1, 0.8)))
        made.add(signal(3600, (0.7, 0.1, 0.2)))
        return made

    now = T0 + timedelta(hours=1, minutes=5)
    composite = window().composite("BTCUSDT", now)
    assert composite.label is Label.BULLISH and composite.confidence < 0.9
    after_first = window().composite("BTCUSDT", T0 + timedelta(hours=6, minutes=10))
    assert after_first.label is Label.BULLISH and after_first.n_signals == 2
    until = window().steady_until("BTCUSDT", now, composite, can_short=True)
    assert until == T0 + timedelta(hours=6, minutes=30) - _US
    assert window().composite("BTCUSDT", until + _US).label is Label.BEARISH
    # proved lazily: up to the first age-out, then on as far as asked and no further
    promise = window().steady_promise("BTCUSDT", now, composite, can_short=True)
    assert promise is not None and promise.until == T0 + timedelta(hours=6) - _US
    assert promise.covering(T0 + timedelta(hours=6, minutes=5)) == until
    assert promise.covering(T0 + timedelta(hours=6, minutes=30)) is None


def test_a_composite_that_turns_within_the_span_is_steady_until_just_before_it_turns() -> None:
    window = SignalWindow(EVIDENCE)
    window.add(signal(0, (0.05, 0.05, 0.9)))  # bullish now, its share falls under the prior
    now = T0 + timedelta(minutes=1)
    composite = window.composite("BTCUSDT", now)
    assert composite.label is Label.BULLISH and composite.confidence >= 0.6
    assert window.steady_until("BTCUSDT", now, composite, can_short=True) is None  # sized
    later = T0 + timedelta(hours=2, minutes=30)
    below = window.composite("BTCUSDT", later)
    assert below.label is Label.BULLISH and below.confidence < 0.6
    # the bullish share keeps falling, and the neutral prior overtakes it when 0.9 F = 0.05 F
    # + 0.25, F = 0.25 / 0.85 of its weight left: 2h x log2(0.85 / 0.25) = 3h 31m 53s after it
    until = window.steady_until("BTCUSDT", later, below, can_short=True)
    turns = T0 + timedelta(hours=2) * math.log2(0.85 / 0.25)
    assert until is not None and turns - timedelta(seconds=1) < until < turns
    assert vote(window.signals("BTCUSDT", until), until, EVIDENCE).label is Label.BULLISH
    after = until + timedelta(seconds=1)
    assert vote(window.signals("BTCUSDT", after), after, EVIDENCE).label is Label.NEUTRAL


def test_a_member_still_to_come_or_an_unsafe_one_ends_the_promise() -> None:
    now = T0 + timedelta(hours=2, minutes=5)
    window = keeping(EVIDENCE)
    window.add(signal(7800, (0.2, 0.6, 0.2)))  # received after `now`: it enters at 2:10
    composite = window.composite("BTCUSDT", now)
    until = window.steady_until("BTCUSDT", now, composite, can_short=True)
    assert until == T0 + timedelta(seconds=7800) - timedelta(microseconds=1)
    window = keeping(EVIDENCE)
    window.add(signal(7000, (0.2, 0.6, 0.2), weight=1e-250))  # a weight decay could zero
    composite = window.composite("BTCUSDT", now)
    assert window.steady_until("BTCUSDT", now, composite, can_short=True) is None


def promised(until: datetime | None, more: Any = None) -> Evaluation:
    return Evaluation("hold", EMPTY, "", None, until, more)


def test_the_engines_book_of_promises() -> None:
    book = SteadyRevotes()
    until = T0 + timedelta(hours=1)
    book.keep("BTCUSDT", promised(until), Decimal(0))
    book.keep("ETHUSDT", promised(None), Decimal(0))
    targets = {"BTCUSDT": Decimal("0.000")}
    assert book.due(["BTCUSDT", "ETHUSDT"], until, targets) == ["ETHUSDT"]
    assert book.due(["BTCUSDT"], until + timedelta(microseconds=1), targets) == ["BTCUSDT"]
    book.keep("BTCUSDT", promised(until), Decimal(0))
    assert book.due(["BTCUSDT"], T0, {"BTCUSDT": Decimal("0.5")}) == ["BTCUSDT"]
    book.clear()
    assert book.due(["BTCUSDT"], T0, targets) == ["BTCUSDT"]
    # a signal's evaluation: its promise is kept only where nothing is recorded
    book.after_other("BTCUSDT", promised(until), True, Decimal(0))
    assert book.due(["BTCUSDT"], T0, targets) == ["BTCUSDT"]
    trial = SteadyRevotes(records=False)
    trial.after_other("BTCUSDT", promised(until), True, Decimal(0))
    assert trial.due(["BTCUSDT"], T0, targets) == []
    trial.after_other("BTCUSDT", promised(until), False, Decimal(0))  # it set a target
    assert trial.due(["BTCUSDT"], T0, targets) == ["BTCUSDT"]


def test_a_lapsed_promise_is_carried_on_as_far_as_the_strategy_proves_it() -> None:
    book = SteadyRevotes()
    asked: list[datetime] = []
    later = T0 + timedelta(hours=3)

    def more(at: datetime) -> datetime | None:
        asked.append(at)
        return later if at <= later else None

    book.keep("BTCUSDT", promised(T0 + timedelta(hours=1), more), Decimal(0))
    assert book.due(["BTCUSDT"], T0 + timedelta(hours=1), {}) == []
    assert asked == []  # within the first span: nothing to walk
    assert book.due(["BTCUSDT"], T0 + timedelta(hours=2), {}) == []
    assert book.due(["BTCUSDT"], later, {}) == []
    assert asked == [T0 + timedelta(hours=2)]  # carried to 3h once, then kept
    assert book.due(["BTCUSDT"], later + _US, {}) == ["BTCUSDT"]
    assert book.due(["BTCUSDT"], later + 2 * _US, {}) == ["BTCUSDT"]  # dropped for good
    assert asked == [T0 + timedelta(hours=2), later + _US]


class CountedVote(VoteStrategy):
    """The vote, counting how often the engine asks it."""

    asked: ClassVar[list[int]] = [0]

    def evaluate(self, symbol: str, now: datetime, **kwargs: Any) -> Evaluation:
        CountedVote.asked[0] += 1
        return super().evaluate(symbol, now, **kwargs)


class UnpromisedVote(CountedVote):
    """The same decisions, but a `decide` of its own: `VoteStrategy` promises nothing for it."""

    def decide(self, view: View) -> Intent | None:
        return super().decide(view)


def sample_settings(tmp: Path, use: str) -> Settings:
    return Settings().with_overrides(
        model={"backend": "lexicon"},
        store={"cache_dir": str(tmp / "cache"), "data_dir": str(tmp / "data")},
        strategy={"use": f"{MODULE}:{use}", "threshold": 0.3},
    )


def asked_counter() -> list[int]:
    """The count of the class the loader imports (pytest's copy of this module is another)."""
    counter: list[int] = importlib.import_module(MODULE).CountedVote.asked
    counter[0] = 0
    return counter


def sample_run(tmp: Path, use: str) -> tuple[dict[str, bytes], int]:
    news, bars = sample_paths()
    config = sample_settings(tmp, use)
    asked = asked_counter()
    result = run_backtest(
        config,
        bars_path=bars,
        news_path=news,
        symbol="BTCUSDT",
        out_dir=tmp / use,
        progress=False,
        run_id="steady",
        luck=LuckOptions(ledger_url=f"sqlite:///{tmp / 'ledger.sqlite'}", lag=False),
    )
    write_report(result)
    files = ("decisions.csv", "trades.csv", "equity.csv")
    return {name: (tmp / use / name).read_bytes() for name in files}, asked[0]


def sample_in_memory(tmp: Path, use: str) -> tuple[TrialResult, int]:
    """The sample replayed as a null replay or a trial is (`replay_in_memory`: no records)."""
    news_path, bars_path = sample_paths()
    settings = sample_settings(tmp, use)
    symbols = SymbolTable.from_settings(settings)
    asked = asked_counter()
    trial = replay_in_memory(
        settings,
        bars=list(assemble.bars_file(bars_path, "BTCUSDT")),
        news=assemble.read_news_file(news_path, symbols),
        signals=assemble.signal_cache(settings),  # the backtests' cache answers every item
        model=assemble.build_model(settings),
        symbol="BTCUSDT",
        symbols=symbols,
    )
    return trial, asked[0]


@pytest.mark.slow  # two sample backtests: about 6 s
def test_a_backtest_with_skipped_revotes_writes_what_asking_every_revote_writes(
    tmp_path: Path,
) -> None:
    promised, asked = sample_run(tmp_path, "CountedVote")
    unpromised, asked_all = sample_run(tmp_path, "UnpromisedVote")
    assert promised == unpromised
    assert promised["decisions.csv"].count(b"\n") > 20
    assert asked < asked_all / 2
    # Recording nothing, a replay also skips the first re-vote after each signal: the same
    # equity and trades as asking every re-vote, the strategy asked less than by the backtest.
    trial, asked_in_memory = sample_in_memory(tmp_path, "CountedVote")
    everything, asked_every_time = sample_in_memory(tmp_path, "UnpromisedVote")
    assert trial.recording.equity == everything.recording.equity
    assert trial.recording.trades == everything.recording.trades
    assert len(trial.recording.trades) > 4
    assert asked_every_time == asked_all
    assert asked_in_memory < asked
