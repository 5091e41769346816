"""The signal window's fast composite is the vote, bit for bit.

`SignalWindow.composite` is what every re-vote runs, so it works from terms prepared when a
signal arrives instead of calling `vote`; a backtest stays byte-identical only if the two agree
exactly (a composite's confidence is written to decisions.csv and sizes the target), for every
aggregation, decay, stale rule, source weight and market-wide mix.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.events import Label, Signal
from strategies.vote import SignalWindow, VoteParams, vote

T0 = datetime(2024, 3, 1, tzinfo=UTC)

probabilities = st.tuples(st.floats(0, 1, allow_nan=False), st.floats(0, 1, allow_nan=False)).map(
    lambda ab: (min(ab), max(ab) - min(ab), 1 - max(ab))
)

signals = st.builds(
    lambda seconds, symbol, label, conf, probs, source, weight, stale: Signal(
        T0 + timedelta(seconds=seconds),
        symbol,
        Label(label),
        conf,
        probs,
        "m",
        source,
        "n",
        None,
        T0 + timedelta(seconds=seconds),
        weight,
        stale,
    ),
    st.integers(0, 3 * 86_400),
    st.sampled_from(["BTCUSDT", "ETHUSDT", None]),
    st.integers(0, 2),
    st.floats(0, 1, allow_nan=False),
    probabilities,
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from([0.0, 0.5, 1.0, 1.7]),
    st.booleans(),
)

parameters = st.builds(
    VoteParams,
    window=st.sampled_from([timedelta(hours=6), timedelta(seconds=90.5), timedelta(days=2)]),
    half_life=st.sampled_from([None, timedelta(hours=2), timedelta(seconds=333.3)]),
    threshold=st.just(0.6),
    source_weights=st.sampled_from([{}, {"a": 2.0, "b": 0.0}]),
    trade_stale=st.booleans(),
    aggregation=st.sampled_from(["share", "evidence"]),
    prior_weight=st.sampled_from([0.0, 0.5, 3.0]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(signals, max_size=40),
    parameters,
    st.lists(st.integers(0, 4 * 86_400), min_size=1, max_size=8),
)
def test_the_windows_composite_is_the_vote_bit_for_bit(
    arrived: list[Signal], params: VoteParams, times: list[int]
) -> None:
    window = SignalWindow(params)
    arrived = sorted(arrived, key=lambda s: s.received)
    for seconds in sorted(times):
        now = T0 + timedelta(seconds=seconds, microseconds=seconds % 7)
        while arrived and arrived[0].received <= now:
            window.add(arrived.pop(0))
        for symbol in ("BTCUSDT", "ETHUSDT"):
            expected = vote(window.signals(symbol, now), now, params)
            assert window.composite(symbol, now) == expected
