"""The event study on synthetic bars and news with a known effect, and on bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from bot.research.event_study import StudyOptions, analyze
from bot.research.multiple import holm
from bot.research.rank_ic import resampled_spearman
from bot.research.signals import SignalArrays
from bot.research.timeline import Bars, parse_horizon
from tests.research.synthetic import HOUR, START, synthetic

FAST = StudyOptions(horizons=("1h", "4h", "1d"), draws=400)


def test_recovers_a_known_effect_inside_its_interval() -> None:
    data = synthetic(effect_bps=30.0)
    document = analyze(data.signals, {"BTCUSDT": data.bars}, FAST)
    bullish = document["label"]["bullish"]["4h"]
    bearish = document["label"]["bearish"]["4h"]
    neutral = document["label"]["neutral"]["4h"]
    assert bullish["ci_low_bps"] <= 30.0 <= bullish["ci_high_bps"]
    assert bullish["ci_low_bps"] > 0
    assert bearish["ci_low_bps"] <= -30.0 <= bearish["ci_high_bps"]
    assert bearish["ci_high_bps"] < 0
    assert neutral["ci_low_bps"] <= 0.0 <= neutral["ci_high_bps"]
    assert bullish["p_value_holm"] < 0.05
    assert bullish["hit_rate"] > 0.5
    assert document["ic"]["4h"]["spearman"] > 0
    assert document["ic"]["4h"]["ci_low"] > 0
    assert "bullish at 4h" in document["summary"]


def test_shuffled_labels_find_nothing() -> None:
    data = synthetic(effect_bps=30.0, shuffle_labels=True)
    document = analyze(data.signals, {"BTCUSDT": data.bars}, FAST)
    for label in ("bearish", "neutral", "bullish"):
        for horizon in ("1h", "4h", "1d"):
            entry = document["label"][label][horizon]
            assert entry["ci_low_bps"] <= 0.0 <= entry["ci_high_bps"], (label, horizon)
    assert "no label's abnormal return" in document["summary"]


def test_forward_pre_event_and_abnormal_returns_by_hand() -> None:
    times = START + HOUR * np.arange(24 * 40)
    opens = 100.0 * np.exp(0.001 * np.arange(times.size))  # +10 bps every bar
    opens[24 * 35 + 1] *= 1.05  # one spike an hour after the item's bar
    bars = Bars.build(times, opens, opens)
    at = int(times[24 * 35]) - 60  # a minute before a bar opens: it enters on that bar
    signals = SignalArrays.build([at], ["bullish"], [[0.1, 0.2, 0.7]], ["s"], [None], ["k"])
    document = analyze(signals, {"X": bars}, StudyOptions(horizons=("1h", "2h"), draws=50))
    one_hour = document["label"]["bullish"]["1h"]
    assert one_hour["n"] == 1  # below min_items: figures are null, counts are not
    assert one_hour["mean_bps"] is None
    two = analyze(signals, {"X": bars}, StudyOptions(horizons=("1h", "2h"), draws=50, min_items=1))[
        "label"
    ]["bullish"]
    # Forward 1h: +10 bps of trend plus the 5% spike; 2h: the spike is gone again.
    assert two["1h"]["mean_bps"] == pytest.approx((0.001 + math.log(1.05)) * 1e4)
    assert two["2h"]["mean_bps"] == pytest.approx(0.002 * 1e4)
    # The 30 days before hold only trend windows (the spike is after the item): drift = trend.
    assert two["1h"]["mean_abnormal_bps"] == pytest.approx(math.log(1.05) * 1e4)
    assert two["2h"]["mean_abnormal_bps"] == pytest.approx(0.0, abs=1e-6)
    assert two["2h"]["pre_event_bps"] == pytest.approx(20.0)


def test_drift_uses_only_windows_closed_before_the_item() -> None:
    times = START + HOUR * np.arange(24 * 40)
    opens = np.full(times.size, 100.0)
    entry_bar = 24 * 35
    opens[entry_bar + 1 :] = 110.0  # a jump right after the item: its forward window only
    bars = Bars.build(times, opens, opens)
    signals = SignalArrays.build(
        [int(times[entry_bar])], ["bullish"], [[0.1, 0.2, 0.7]], ["s"], [None], ["k"]
    )
    entry = analyze(signals, {"X": bars}, StudyOptions(horizons=("4h",), draws=20, min_items=1))[
        "label"
    ]["bullish"]["4h"]
    # Had the drift seen windows overlapping the item's own, it would not be exactly 0.
    assert entry["mean_abnormal_bps"] == pytest.approx(entry["mean_bps"])
    assert entry["mean_bps"] == pytest.approx(math.log(1.1) * 1e4)


def test_gaps_make_forward_returns_missing_and_counted() -> None:
    data = synthetic(n_signals=300)
    keep = np.ones(data.bars.open_time.size, dtype=bool)
    keep[3_000:3_010] = False  # a 10-hour hole
    bars = Bars.build(data.bars.open_time[keep], data.bars.open[keep], data.bars.close[keep])
    assert bars.n_gaps == 1
    received = data.bars.open_time[[2_995, 2_998, 3_020]]
    signals = SignalArrays.build(
        received, ["bullish"] * 3, [[0.1, 0.2, 0.7]] * 3, ["s"] * 3, [None] * 3, ["a", "b", "c"]
    )
    document = analyze(signals, {"X": bars}, StudyOptions(horizons=("4h",), draws=20))
    missing = document["counts"]["missing"]["4h"]
    # 2995 + 4h = 2999 exists; 2998 + 4h = 3002 is in the hole; 3020 is clear.
    assert missing["gap"] == 1
    assert document["label"]["bullish"]["4h"]["n"] == 2
    assert any("gaps" in warning for warning in document["warnings"])


def test_news_outside_the_bars_and_long_horizons_are_counted() -> None:
    times = START + HOUR * np.arange(100)
    opens = np.linspace(100, 110, 100)
    bars = Bars.build(times, opens, opens)
    received = [START - 10, START + 5 * HOUR, START + 50 * HOUR, START + 500 * HOUR]
    signals = SignalArrays.build(
        received, ["bullish"] * 4, [[0.1, 0.2, 0.7]] * 4, ["s"] * 4, [None] * 4, list("abcd")
    )
    document = analyze(signals, {"X": bars}, StudyOptions(horizons=("1h", "10d"), draws=20))
    counts = document["counts"]
    assert (counts["before_bars"], counts["after_bars"], counts["studied"]) == (1, 1, 2)
    assert counts["missing"]["10d"]["beyond_end"] == 2
    assert any("10d is longer than the bars' span" in w for w in document["warnings"])
    assert any("1 signals before the first bar and 1 after" in w for w in document["warnings"])


def test_horizon_errors_name_what_was_wrong() -> None:
    data = synthetic(n_signals=50)
    with pytest.raises(ValueError, match=r"horizon 30m is shorter than the bars' interval 1h"):
        analyze(data.signals, {"BTCUSDT": data.bars}, StudyOptions(horizons=("30m",)))
    with pytest.raises(ValueError, match=r"horizon 'soon' is not a number with a unit"):
        parse_horizon("soon")
    with pytest.raises(ValueError, match=r"90m is not a whole number"):
        analyze(data.signals, {"BTCUSDT": data.bars}, StudyOptions(horizons=("90m",)))
    assert parse_horizon("4h") == 4 * HOUR and parse_horizon("1d") == 86_400


def test_near_identical_headlines_are_merged_and_counted() -> None:
    data = synthetic(n_signals=400)
    keys = list(data.signals.key)
    received = data.signals.received.copy()
    # Every tenth item is repeated a minute later with reordered words and other punctuation.
    extra = np.arange(0, 400, 10)
    copies = SignalArrays.build(
        np.concatenate([received, received[extra] + 60]),
        np.concatenate([data.signals.label, data.signals.label[extra]]),
        np.concatenate([data.signals.probs, data.signals.probs[extra]]),
        [*data.signals.source, *data.signals.source[extra]],
        [None] * (400 + extra.size),
        [*keys, *[f"{keys[i].split()[1]}: {keys[i].split()[0].upper()}!" for i in extra]],
    )
    document = analyze(copies, {"X": data.bars}, StudyOptions(horizons=("4h",), draws=50))
    assert document["counts"]["merged_duplicates"] == extra.size
    entries = [document["label"][label]["4h"] for label in ("bearish", "neutral", "bullish")]
    assert sum(entry["n_raw"] - entry["n"] for entry in entries) == extra.size
    assert sum(entry["merged"] for entry in entries) == extra.size


def test_document_layout_is_json_with_every_field() -> None:
    data = synthetic(n_signals=300)
    second = Bars.build(data.bars.open_time, data.bars.open * 0.05, data.bars.close * 0.05)
    document = analyze(data.signals, {"BTCUSDT": data.bars, "ETHUSDT": second}, FAST)
    json.dumps(document, allow_nan=False)
    assert set(document["symbols"]) == {"BTCUSDT", "ETHUSDT"}
    assert document["symbol"] == "BTCUSDT"
    for label in ("bearish", "neutral", "bullish"):
        for horizon in ("1h", "4h", "1d"):
            entry = document["label"][label][horizon]
            assert set(entry) >= {
                "n",
                "n_raw",
                "mean_bps",
                "mean_abnormal_bps",
                "ci_low_bps",
                "ci_high_bps",
                "hit_rate",
                "p_value",
                "p_value_holm",
                "pre_event_bps",
            }
    assert set(document["ic"]["4h"]) >= {"spearman", "ci_low", "ci_high", "p_value"}
    assert document["label_confidence"]["bullish"]["0.70-0.90"]["4h"]["n"] >= 0
    assert set(document["source"]) == {"cointelegraph", "cryptonews"}
    assert document["scope"]["market"]["bullish"]["4h"]["n"] > 0
    path = document["event_path"]["bullish"]
    assert path["offset_hours"][0] == -24.0 and path["offset_hours"][-1] == 24.0
    assert len(path["mean_bps"]) == len(path["ci_low_bps"]) == 49
    # Same seed, same numbers.
    assert analyze(data.signals, {"BTCUSDT": data.bars}, FAST)["label"] == document["label"]


def test_event_path_shows_the_effect_after_the_item_only() -> None:
    data = synthetic(effect_bps=30.0)
    path = analyze(data.signals, {"X": data.bars}, FAST)["event_path"]["bullish"]
    at_zero = path["offset_hours"].index(0.0)
    after = path["offset_hours"].index(4.0)
    rise = path["mean_bps"][after] - path["mean_bps"][at_zero]
    assert 20.0 < rise < 40.0
    assert abs(path["mean_bps"][at_zero]) < 15.0


def test_holm_by_hand() -> None:
    adjusted = holm(np.array([0.01, 0.04, np.nan, 0.03, 0.5]))
    # Sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1 -> 0.04, 0.09, 0.08 -> 0.09, 0.5.
    assert adjusted[0] == pytest.approx(0.04)
    assert adjusted[3] == pytest.approx(0.09)
    assert adjusted[1] == pytest.approx(0.09)
    assert adjusted[4] == pytest.approx(0.5)
    assert math.isnan(adjusted[2])


def test_resampled_spearman_equals_spearman_of_the_repeated_sample() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, 300).astype(float)  # many ties
    y = x + rng.normal(0, 5, 300)
    y[::3] = np.round(y[::3])
    day = np.sort(rng.integers(0, 40, 300))
    weights = rng.integers(0, 3, (6, 40)).astype(float)
    got = resampled_spearman(x, y, day, weights)
    for row, value in zip(weights, got, strict=True):
        repeated = np.repeat(np.arange(300), row[day].astype(int))
        assert value == pytest.approx(spearmanr(x[repeated], y[repeated]).statistic, abs=1e-6)


def test_hit_rate_leaves_out_items_that_predict_no_direction() -> None:
    data = synthetic(n_signals=300)
    probs = np.where(data.signals.label[:, None] == 1, [[0.2, 0.6, 0.2]], data.signals.probs)
    flat = SignalArrays.build(
        data.signals.received,
        data.signals.label,
        probs,
        data.signals.source,
        [None] * 300,
        data.signals.key,
    )
    document = analyze(flat, {"X": data.bars}, StudyOptions(horizons=("4h",), draws=50))
    assert document["label"]["neutral"]["4h"]["hit_rate"] is None
    assert 0.0 < document["label"]["bullish"]["4h"]["hit_rate"] < 1.0


def test_signal_arrays_from_signal_events() -> None:
    from datetime import UTC, datetime

    from bot.events import Label, Signal

    when = datetime(2022, 1, 1, 12, tzinfo=UTC)
    events = [
        Signal(
            ts=when,
            symbol=None,
            label=Label.BULLISH,
            confidence=0.7,
            probs=(0.1, 0.2, 0.7),
            model_id="m",
            source="cryptonews",
            news_id="n1",
            published=when,
            received=when,
        ),
        Signal(
            ts=when,
            symbol="BTCUSDT",
            label=Label.BEARISH,
            confidence=0.6,
            probs=(0.6, 0.3, 0.1),
            model_id="m",
            source="rss",
            news_id="n2",
            published=None,
            received=when,
        ),
    ]
    arrays = SignalArrays.from_signals(events, {"n1": "Bitcoin up"})
    assert arrays.received.tolist() == [int(when.timestamp())] * 2
    assert arrays.label.tolist() == [2, 0]
    assert arrays.symbol.tolist() == ["", "BTCUSDT"]
    assert arrays.key.tolist() == ["Bitcoin up", "n2"]
    assert arrays.score.tolist() == pytest.approx([0.6, -0.5])


def test_no_studied_signal_is_a_document_of_counts_not_a_crash() -> None:
    times = START + HOUR * np.arange(100)
    bars = Bars.build(times, np.linspace(100, 110, 100), np.linspace(100, 110, 100))
    outside = SignalArrays.build(
        [START - 5, START + 10**7],
        ["bullish", "bearish"],
        [[0.1, 0.2, 0.7]] * 2,
        ["s", "s"],
        [None, None],
        ["a", "b"],
    )
    empty = SignalArrays.build([], [], [], [], [], [])
    for signals in (outside, empty):
        document = analyze(signals, {"X": bars}, StudyOptions(horizons=("1h",), draws=20))
        json.dumps(document, allow_nan=False)
        assert document["label"]["bullish"]["1h"]["n"] == 0
        assert document["ic"]["1h"]["spearman"] is None
        assert "no label's abnormal return" in document["summary"]
    assert (
        analyze(outside, {"X": bars}, StudyOptions(horizons=("1h",)))["counts"]["before_bars"] == 1
    )


def test_signals_for_another_symbol_are_left_out() -> None:
    data = synthetic(n_signals=200)
    tagged = SignalArrays.build(
        data.signals.received,
        data.signals.label,
        data.signals.probs,
        data.signals.source,
        ["ETHUSDT"] * 100 + [None] * 100,
        data.signals.key,
    )
    document = analyze(
        tagged,
        {"BTCUSDT": data.bars, "ETHUSDT": data.bars},
        StudyOptions(horizons=("1h",), draws=20),
    )
    assert document["symbols"]["BTCUSDT"]["counts"]["signals"] == 100
    assert document["symbols"]["ETHUSDT"]["counts"]["signals"] == 200
    eth = document["symbols"]["ETHUSDT"]["scope"]
    assert (
        sum(eth["tagged"][label]["1h"]["n_raw"] for label in ("bearish", "neutral", "bullish"))
        == 100
    )
