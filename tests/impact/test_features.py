"""Market features read only bars that had closed by the item's arrival."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from bot.events import Bar
from training.impact.features import BarWindow, FeatureSpec, MarketBars, compute_features

from .synthetic import HOUR, T0, noisy_bars

SPEC = FeatureSpec(("returns", "volatility", "volume"), 4 * HOUR)


def test_names_follow_the_groups_and_horizon() -> None:
    assert SPEC.names == ("ret_1h", "ret_4h", "ret_1d", "pre_4h", "vol_1d", "volume_z_1w")
    assert FeatureSpec(("volume",), 4 * HOUR).names == ("volume_z_1w",)


def test_changing_every_later_bar_leaves_an_items_features_unchanged() -> None:
    bars = noisy_bars(20 * 24, seed=1)
    rng = np.random.default_rng(7)
    received = np.sort(rng.integers(T0 + 9 * 24 * HOUR, T0 + 19 * 24 * HOUR, 40))
    before = compute_features(bars, received, SPEC)
    assert np.isfinite(before).all()
    for row, t in enumerate(received):
        later = bars.open_time + bars.interval > t  # not closed by t: every bar after the item
        changed = MarketBars(
            bars.symbol,
            bars.open_time,
            np.where(later, rng.uniform(50, 150, len(bars)), bars.open),
            np.where(later, rng.uniform(50, 150, len(bars)), bars.close),
            np.where(later, rng.uniform(0, 1000, len(bars)), bars.volume),
            bars.interval,
        )
        after = compute_features(changed, np.array([t]), SPEC)[0]
        assert np.array_equal(after, before[row]), row


def test_values_by_hand() -> None:
    bars = noisy_bars(10 * 24, seed=2)
    c = 9 * 24  # the last bar closed by an item 10 minutes after its close
    t = int(bars.open_time[c]) + HOUR + 600
    row = compute_features(bars, np.array([t]), SPEC)[0]
    log_close = np.log(bars.close)
    assert np.isclose(row[0], log_close[c] - log_close[c - 1])
    assert np.isclose(row[1], log_close[c] - log_close[c - 4])
    assert np.isclose(row[2], log_close[c] - log_close[c - 24])
    assert np.isclose(row[3], row[1])  # the 4h horizon's pre-move
    assert np.isclose(row[4], np.std(np.diff(log_close[c - 24 : c + 1]), ddof=1))
    window = bars.volume[c - 168 : c]
    assert np.isclose(row[5], (bars.volume[c] - window.mean()) / window.std(ddof=1))
    # too little history: NaN, not a guess
    early = compute_features(bars, np.array([T0 + 3 * HOUR]), SPEC)[0]
    assert np.isnan(early[2]) and np.isnan(early[5]) and np.isfinite(early[0])


def test_the_streaming_window_computes_the_same_features() -> None:
    bars = noisy_bars(10 * 24, seed=4)
    window = BarWindow("BTCUSDT", SPEC)
    t = int(bars.open_time[200]) + 1_200
    for i in range(len(bars)):
        opened = datetime.fromtimestamp(int(bars.open_time[i]), UTC)
        closed = datetime.fromtimestamp(int(bars.open_time[i]) + HOUR, UTC)
        if closed.timestamp() > t:
            break
        price = Decimal(repr(float(bars.open[i])))
        window.on_bar(
            Bar(
                "BTCUSDT",
                opened,
                closed,
                price,
                price,
                price,
                Decimal(repr(float(bars.close[i]))),
                Decimal(repr(float(bars.volume[i]))),
            )
        )
    context = window.context(datetime.fromtimestamp(t, UTC))
    expected = compute_features(bars, np.array([t]), SPEC)[0]
    assert context.names == SPEC.names
    assert np.allclose(context.values, expected, rtol=1e-9)
