"""Impact labels on a synthetic series whose moves are known."""

from __future__ import annotations

import numpy as np

from training.impact.labels import DOWN, FLAT, UP, LabelOptions, label_items

from .synthetic import HOUR, T0, noisy_bars, with_step

DAYS = 24 * HOUR
OPTIONS = LabelOptions(horizon_s=4 * HOUR, threshold=0.5, lookback_s=30 * DAYS)


def _flat_window(bars, first: int, last: int):  # type: ignore[no-untyped-def]
    """Opens from bar `first` to `last` all equal to bar `first`'s (no move there)."""
    opens = bars.open.copy()
    opens[first : last + 1] = opens[first]
    opens[last + 1 :] *= opens[first] / bars.open[last]
    closes = np.concatenate((opens[1:], [opens[-1]]))
    return type(bars)(bars.symbol, bars.open_time, opens, closes, bars.volume, bars.interval)


def test_known_moves_are_labelled_up_down_and_flat() -> None:
    bars = noisy_bars(50 * 24)
    up_bar, down_bar, flat_bar = 35 * 24, 40 * 24, 45 * 24
    bars = with_step(bars, up_bar + 2, 0.05)  # +5% inside the 4h after the up item
    bars = with_step(bars, down_bar + 3, -0.05)
    bars = _flat_window(bars, flat_bar, flat_bar + 4)
    research = bars.research()
    # received mid-bar: the entry is the next bar's open, as a fill would be
    received = T0 + HOUR * np.array([up_bar - 1, down_bar - 1, flat_bar - 1]) + 1_800
    labels = label_items(research, received, OPTIONS)
    assert labels.index.tolist() == [0, 1, 2]
    assert labels.label.tolist() == [UP, DOWN, FLAT]
    assert (labels.entry_time == T0 + HOUR * np.array([up_bar, down_bar, flat_bar])).all()
    # the abnormal return is the forward log return less the past-only 30-day mean
    log_open = np.log(bars.open)
    for row, entry in enumerate((up_bar, down_bar, flat_bar)):
        forward = log_open[entry + 4] - log_open[entry]
        t = received[row]
        past = [
            log_open[i + 4] - log_open[i]
            for i in range(len(bars))
            if bars.open_time[i] >= t - 30 * DAYS and bars.open_time[i] + 4 * HOUR <= t
        ]
        assert np.isclose(labels.abnormal[row], forward - np.mean(past), atol=1e-12)
        assert np.isclose(labels.threshold[row], 0.5 * np.std(past), rtol=1e-6)
    assert labels.counts() == {"down": 1, "flat": 1, "up": 1}


def test_threshold_scales_with_volatility() -> None:
    """The same 1% move is `up` in a quiet market and `flat` in a wild one."""
    for sigma, expected in ((0.0005, UP), (0.02, FLAT)):
        bars = with_step(noisy_bars(40 * 24, seed=3, sigma=sigma), 35 * 24 + 1, 0.01)
        bars = _flat_window(bars, 35 * 24 + 2, 35 * 24 + 4)
        labels = label_items(bars.research(), np.array([T0 + 35 * DAYS]), OPTIONS)
        assert labels.label.tolist() == [expected], sigma


def test_items_that_cannot_be_labelled_are_counted_by_reason() -> None:
    bars = noisy_bars(40 * 24)
    times = bars.open_time.copy()
    keep = (times < T0 + 36 * DAYS) | (times >= T0 + 36 * DAYS + 3 * HOUR)  # a 3h gap
    research = type(bars.research())(times[keep], bars.open[keep], bars.close[keep], bars.interval)
    last_open = int(times[-1])
    received = np.array(
        [
            T0 - HOUR,  # before the first bar
            T0 + 5 * DAYS,  # less than 30 days of bars before it
            T0 + 33 * DAYS,  # fine
            T0 + 36 * DAYS - 2 * HOUR,  # its window crosses the gap
            last_open - 2 * HOUR,  # its window runs past the last bar
            last_open + 2 * HOUR,  # after the last bar opened
        ]
    )
    labels = label_items(research, received, OPTIONS)
    assert labels.index.tolist() == [2]
    assert labels.dropped == {
        "before_bars": 1,
        "no_history": 1,
        "after_bars": 1,
        "beyond_end": 1,
        "gap": 1,
    }
